//! What every CLI test needs: the binary, a working directory with a cfg.yaml, and digest
//! checks through skopeo.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use testkit::{TestRegistry, skopeo_inspect_raw};

/// The binary under test, in English unless a test asks otherwise, with no Docker login.
pub(crate) fn image_transmit(workdir: &Path) -> Command {
    let mut command = Command::cargo_bin("image-transmit").unwrap();
    command
        .current_dir(workdir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("lang")
        .env("DOCKER_CONFIG", workdir.join("no-docker-config"));
    command
}

/// A scratch directory for one test.
pub(crate) fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The digest of what the registry serves for `repository:reference`, read by skopeo.
pub(crate) fn served_digest(
    registry: &TestRegistry,
    repository: &str,
    reference: &str,
) -> Option<String> {
    skopeo_inspect_raw(registry, repository, reference).map(|bytes| testkit::sha256_digest(&bytes))
}

pub(crate) fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `image-transmit copy --from SOURCE --to TARGET`, for the test to add images and options.
pub(crate) fn copy_between(
    workdir: &Path,
    source: &TestRegistry,
    target: &TestRegistry,
) -> Command {
    let mut command = image_transmit(workdir);
    command.args(["copy", "--from", &source.url(), "--to", &target.url()]);
    command
}
