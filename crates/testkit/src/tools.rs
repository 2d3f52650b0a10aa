//! The external programs this crate drives, and one way to run them that fails loudly.

use std::env;
use std::path::Path;
use std::process::{Command, Output};

/// Each tool with the Debian package that installs it, so a failure says what to install.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("htpasswd", "apache2-utils"),
    ("openssl", "openssl"),
];

/// Panics, naming the missing programs and their Debian packages, unless `docker-registry`,
/// `skopeo`, `htpasswd` and `openssl` are all on `PATH`.
///
/// Every [`TestRegistry`](crate::TestRegistry) constructor calls this, so tests fail rather than
/// skip on a machine that lacks them.
#[track_caller]
pub fn require_tools() {
    let missing: Vec<&(&str, &str)> = TOOLS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .collect();
    if !missing.is_empty() {
        let programs: Vec<String> = missing
            .iter()
            .map(|(program, package)| format!("`{program}` (package {package})"))
            .collect();
        let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
        panic!(
            "testkit needs {} on PATH; install with: apt-get install -y {}",
            programs.join(", "),
            packages.join(" ")
        );
    }
}

/// Panics, naming the Debian package to install, unless `program` is on `PATH`: for the tests
/// of one feature that need a program the others do not.
#[track_caller]
pub(crate) fn require_program(program: &str, package: &str) {
    assert!(
        on_path(program),
        "this test needs `{program}`; install it with: apt-get install -y {package}"
    );
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| is_executable(&dir.join(program))))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `command` to completion and returns its output, or a message naming the command and
/// quoting its stderr.
pub(crate) fn output(command: &mut Command) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Like [`output`] for commands whose failure leaves the test nothing to do but fail.
#[track_caller]
pub(crate) fn run(command: &mut Command) {
    if let Err(message) = output(command) {
        panic!("{message}");
    }
}
