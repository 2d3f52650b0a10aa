//! End-to-end tests of the `image-transmit` binary against real CNCF registries started on
//! loopback, with skopeo as the independent reader of what we wrote. They run on Linux, and
//! compile for Windows too; `wine` runs the Windows build under Wine.

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
mod hostile;
mod legacy;
// Podman's service and containerd run on Unix sockets.
#[cfg(unix)]
mod load;
mod network;
mod notify;
mod original_tools;
mod serve;
mod transports;
mod ui;
mod watch;
mod wine;
