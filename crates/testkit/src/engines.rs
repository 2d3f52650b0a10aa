//! Real container engines for the load tests: Podman's Docker-compatible API service and a
//! containerd daemon, each started for one test with its own storage under a temporary
//! directory and stopped when the test drops it. No Docker engine runs on these machines;
//! Podman answers the same image calls, and containerd runs for real.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tools::{output, require_program};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > READY_TIMEOUT {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not come up within {READY_TIMEOUT:?}; its log:\n{log}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn kill(process: &mut Option<Child>) {
    if let Some(mut child) = process.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `podman system service` on a unix socket: the Docker Engine API for image operations.
pub struct TestPodman {
    process: Option<Child>,
    socket: PathBuf,
    dir: TempDir,
}

impl TestPodman {
    #[track_caller]
    pub fn start() -> TestPodman {
        require_program("podman", "podman");
        let dir = tempfile::Builder::new()
            .prefix("testkit-podman-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("docker.sock");
        let log = dir.path().join("podman.log");
        let process = Command::new("podman")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            // Podman reads its own config from the home directory; keep the test's apart.
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start podman");
        let podman = TestPodman {
            process: Some(process),
            socket,
            dir,
        };
        wait_until("podman system service", &log, || {
            podman
                .try_get("/_ping")
                .is_some_and(|(status, _)| status == 200)
        });
        podman
    }

    /// `DOCKER_HOST` for this service.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Where the service keeps its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn try_get(&self, path: &str) -> Option<(u16, Vec<u8>)> {
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        // HTTP/1.0: the whole reply, not chunked, then the connection closes.
        write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).ok()?;
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&reply[..split]).to_string();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, reply[split + 4..].to_vec()))
    }

    /// `GET path` on the API: status and body.
    #[track_caller]
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self
            .try_get(path)
            .unwrap_or_else(|| panic!("podman did not answer GET {path}"));
        let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, value)
    }

    /// The image ID (`sha256:` of its config) that `name` has, if the service has it.
    #[track_caller]
    pub fn image_id(&self, name: &str) -> Option<String> {
        let (status, image) = self.get(&format!("/images/{name}/json"));
        (status == 200).then(|| image["Id"].as_str().unwrap_or_default().to_string())
    }

    /// Every tag of every image, as `GET /images/json` lists them.
    #[track_caller]
    pub fn tags(&self) -> Vec<String> {
        let (_, images) = self.get("/images/json");
        images
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|image| image["RepoTags"].as_array().cloned().unwrap_or_default())
            .filter_map(|tag| tag.as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for TestPodman {
    fn drop(&mut self) {
        kill(&mut self.process);
        // vfs layers are plain directories, some read-only: make them removable.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(self.dir.path())
            .status();
    }
}

/// A containerd daemon with its own root, state and socket, CRI off.
pub struct TestContainerd {
    process: Option<Child>,
    socket: PathBuf,
    dir: TempDir,
}

impl TestContainerd {
    #[track_caller]
    pub fn start() -> TestContainerd {
        require_program("containerd", "containerd");
        require_program("ctr", "containerd");
        let dir = tempfile::Builder::new()
            .prefix("testkit-containerd-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {:?}\nstate = {:?}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = {:?}\n",
                dir.path().join("root").display().to_string(),
                dir.path().join("state").display().to_string(),
                socket.display().to_string(),
            ),
        )
        .unwrap();
        let log = dir.path().join("containerd.log");
        let process = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start containerd");
        let containerd = TestContainerd {
            process: Some(process),
            socket,
            dir,
        };
        wait_until("containerd", &log, || {
            containerd.ctr("default", &["version"]).is_ok()
        });
        containerd
    }

    /// containerd's socket.
    pub fn address(&self) -> String {
        self.socket.display().to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `ctr` against this daemon in `namespace`; its standard output.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Result<String, String> {
        let output = output(
            Command::new("ctr")
                .arg("--address")
                .arg(&self.socket)
                .arg("--namespace")
                .arg(namespace)
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).to_string())
    }

    /// The images of `namespace`: name and the digest of what it names.
    #[track_caller]
    pub fn images(&self, namespace: &str) -> Vec<(String, String)> {
        let listing = self
            .ctr(namespace, &["images", "ls"])
            .unwrap_or_else(|message| panic!("{message}"));
        listing
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // REF TYPE DIGEST SIZE PLATFORMS LABELS
                Some((fields.first()?.to_string(), fields.get(2)?.to_string()))
            })
            .collect()
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        kill(&mut self.process);
        // Snapshots may still be mounted when the daemon is killed.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}/[^ ]*' /proc/mounts | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}
