//! End-to-end tests of the `image-transmit` binary against real CNCF registries started on
//! loopback, with skopeo as the independent reader of what we wrote.

mod archives;
mod auth;
mod bundle_support;
mod bundles;
mod cache;
mod common;
mod copy;
mod demo;
mod errors;
mod faults;
mod legacy;
mod load;
mod notify;
mod serve;
mod ui;
mod watch;
