//! Offline bundles: data files of tar entries plus a `*_meta.yaml`, compatible with the
//! original tool's (see `docs/bundle-format.md`).

pub mod archive;
pub mod compress;
pub mod meta;
pub mod parts;
pub mod reader;
pub mod verify;
pub mod writer;
