//! What every CLI test needs: the binary, a working directory with a cfg.yaml, and digest
//! checks through skopeo.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use testkit::proxy::{FaultProxy, Rule};
use testkit::{Layer, TestRegistry, push_oci_image, skopeo_inspect_raw};

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
    fs_err::write(&path, text).unwrap();
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

/// A long-running command (a daemon, the UI) started for a test, its standard output collected
/// line by line.
pub(crate) struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Daemon {
        let mut command = Process::new(assert_cmd::cargo::cargo_bin("image-transmit"));
        command
            .current_dir(dir)
            .env("LANG", "en_US.UTF-8")
            .env("DOCKER_CONFIG", dir.join("no-docker-config"))
            .args(args);
        Daemon::spawn(command)
    }

    /// Starts `command` (the program, its arguments and environment set) as a daemon.
    pub(crate) fn spawn(mut command: Process) -> Daemon {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Daemon { child, lines }
    }

    pub(crate) fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The address, with its token, that a starting web UI prints.
    #[track_caller]
    pub(crate) fn ui_address(&self) -> String {
        self.wait_for("the UI's address", Duration::from_secs(60), |out| {
            out.contains("/?token=")
        });
        self.output()
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap()
            .to_string()
    }

    /// Waits until `ready` holds, failing the test with the daemon's output after `limit`.
    #[track_caller]
    pub(crate) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut(&str) -> bool,
    ) {
        let started = Instant::now();
        while !ready(&self.output()) {
            assert!(
                started.elapsed() < limit,
                "{what} did not happen within {limit:?}; the daemon said:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status once it has left.
    #[track_caller]
    pub(crate) fn terminate(mut self) -> (Option<i32>, String) {
        let status = Process::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.output());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the daemon did not stop on SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UI's `host:port` and token, from the address it printed.
pub(crate) fn address_and_token(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("http://");
    let address = rest.split('/').next().unwrap().to_string();
    let token = rest.split("token=").nth(1).unwrap_or_default().to_string();
    (address, token)
}

/// One raw HTTP/1.1 request to the UI (`headers` end with `\r\n` each); the whole reply.
pub(crate) fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// A registry holding `team/big:1`, one 2 MiB layer, behind a proxy that trickles that layer
/// out (32 KiB every 100 ms): a job copying it from the proxy is still running when a test
/// stops it. The registry, the proxy (the source to use) and the layer.
pub(crate) fn trickling_source(seed: u64) -> (TestRegistry, FaultProxy, Layer) {
    let source = TestRegistry::start();
    let slow = Layer::random(seed, 2 << 20);
    push_oci_image(&source, "team/big", "1", std::slice::from_ref(&slow));
    let proxy = FaultProxy::start(&source);
    proxy.add(Rule::slow_body(
        "GET",
        slow.digest(),
        32 * 1024,
        Duration::from_millis(100),
    ));
    (source, proxy, slow)
}
