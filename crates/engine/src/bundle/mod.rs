//! Offline bundles: data files of tar entries plus a `*_meta.yaml`, compatible with the
//! original tool's (see `docs/bundle-format.md`).

pub mod archive;
pub mod chain;
pub mod compress;
mod docker_archive;
pub mod meta;
pub mod oci_archive;
mod part_writer;
pub mod parts;
pub mod reader;
pub mod squashfs;
pub mod verify;
pub mod writer;

/// The original tool's bundles, shared by the bundle tests. They sit beside the repository (the
/// `shared` folder); a checkout without them must fail loudly, not pass by testing nothing.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    pub(crate) fn fixture_dir() -> PathBuf {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/original-bundle/"
        ));
        assert!(
            dir.join("README.md").is_file(),
            "the original tool's bundle fixtures are missing: expected {} (the `shared` folder \
             next to the repository)",
            dir.display()
        );
        dir
    }

    /// A folder of `shared/fixtures/original-tools/` (bundles the original tools wrote, each
    /// with a README of how).
    pub(crate) fn original_tools(kind: &str) -> PathBuf {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/original-tools/"
        ))
        .join(kind);
        assert!(
            dir.join("README.md").is_file(),
            "the original tools' fixtures are missing: expected {} (the `shared` folder next \
             to the repository)",
            dir.display()
        );
        dir
    }

    pub(crate) const FULL: &str = "img_full_202611230708_meta.yaml";
    pub(crate) const INCR: &str = "img_incr_202611230709_meta.yaml";
}
