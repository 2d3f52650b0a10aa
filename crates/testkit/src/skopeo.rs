//! skopeo as the independent peer: it pushes OCI test images, and its reads judge what the
//! project's own code left in a registry, since it shares no code with the project.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::TestRegistry;
use crate::tools::{output, run};

/// In skopeo's error when distribution has no such manifest, whether the tag, the digest or the
/// whole repository is missing.
const NOT_FOUND_ERROR: &str = "manifest unknown";

/// The raw manifest bytes the registry serves for `repository` at `reference` (a tag or a
/// `sha256:` digest), read with `skopeo inspect --raw`; `None` if the registry says there is no
/// such manifest or repository. Panics on any other failure.
#[track_caller]
pub fn skopeo_inspect_raw(
    reg: &TestRegistry,
    repository: &str,
    reference: &str,
) -> Option<Vec<u8>> {
    let result = output(
        skopeo()
            .args(["inspect", "--raw"])
            .args(access_flags(reg, ""))
            .arg(docker_reference(reg, repository, reference)),
    );
    match result {
        Ok(output) => Some(output.stdout),
        Err(message) if message.contains(NOT_FOUND_ERROR) => None,
        Err(message) => panic!("{message}"),
    }
}

/// Copies `repository` at `reference` (a tag or a `sha256:` digest) with all its platforms into
/// the OCI layout `dir` with `skopeo copy --all`, which checks every blob against its digest: a
/// success proves the image in the registry is complete and intact.
///
/// A tag is kept as the layout's reference name; a digest reference leaves the entry unnamed.
pub fn skopeo_copy_to_oci_dir(
    reg: &TestRegistry,
    repository: &str,
    reference: &str,
    dir: &Path,
) -> Result<(), String> {
    let mut destination = OsString::from("oci:");
    destination.push(dir);
    if !is_digest(reference) {
        destination.push(format!(":{reference}"));
    }
    output(
        skopeo()
            .args(["copy", "--all", "--quiet"])
            .args(access_flags(reg, "src-"))
            .arg(docker_reference(reg, repository, reference))
            .arg(destination),
    )
    .map(drop)
}

/// Pushes the image or index named `tag` in the OCI layout `layout` to `repository:tag`; `all`
/// copies every platform of an index instead of the one matching this machine.
#[track_caller]
pub(crate) fn push_layout(
    layout: &Path,
    reg: &TestRegistry,
    repository: &str,
    tag: &str,
    all: bool,
) {
    let mut source = OsString::from("oci:");
    source.push(layout);
    source.push(format!(":{tag}"));
    let mut command = skopeo();
    command.args(["copy", "--quiet"]);
    if all {
        command.arg("--all");
    }
    run(command
        .args(access_flags(reg, "dest-"))
        .arg(source)
        .arg(docker_reference(reg, repository, tag)));
}

fn skopeo() -> Command {
    let mut command = Command::new("skopeo");
    // Tests must not depend on the machine's /etc/containers/policy.json.
    command.arg("--insecure-policy");
    command
}

/// Flags to reach `reg`, for skopeo's `--src-`, `--dest-` or unprefixed options.
fn access_flags(reg: &TestRegistry, prefix: &str) -> Vec<OsString> {
    let mut flags = Vec::new();
    match reg.cert_dir() {
        Some(dir) => {
            let mut flag = OsString::from(format!("--{prefix}cert-dir="));
            flag.push(dir);
            flags.push(flag);
        }
        // Without verification skopeo falls back to plain HTTP.
        None => flags.push(format!("--{prefix}tls-verify=false").into()),
    }
    if let Some((user, password)) = reg.credentials() {
        flags.push(format!("--{prefix}creds={user}:{password}").into());
    }
    flags
}

fn docker_reference(reg: &TestRegistry, repository: &str, reference: &str) -> String {
    let separator = if is_digest(reference) { '@' } else { ':' };
    format!("docker://{}/{repository}{separator}{reference}", reg.host())
}

fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}
