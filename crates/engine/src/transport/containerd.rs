//! containerd as a place to load images into, through its `ctr` command: each image's
//! `docker save` archive is streamed into `ctr images import -`, whose exit status decides
//! (the original tool ignored it). The namespace defaults to `k8s.io`, where the kubelet looks
//! (the original used `default`, so Kubernetes never saw its images).

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use futures_util::StreamExt;
use registry::Digest;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::transport::{ByteStream, ImageLoader};

/// How to reach containerd.
#[derive(Debug, Clone)]
pub struct Containerd {
    /// The `ctr` program.
    pub ctr: PathBuf,
    /// containerd's socket.
    pub address: String,
    pub namespace: String,
    /// The snapshotter to unpack into; containerd's default when `None`.
    pub snapshotter: Option<String>,
}

impl Containerd {
    pub const DEFAULT_ADDRESS: &'static str = "/run/containerd/containerd.sock";
    pub const DEFAULT_NAMESPACE: &'static str = "k8s.io";

    fn command(&self) -> Command {
        let mut command = Command::new(&self.ctr);
        command
            .arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace);
        command
    }

    fn unreachable(&self, detail: String) -> Error {
        Error::EngineUnreachable {
            address: format!("{} ({})", self.address, self.ctr.display()),
            detail,
        }
    }

    /// Asks containerd for its version, so a missing `ctr` or a stopped daemon is reported
    /// once, before any image.
    pub async fn check(&self) -> Result<()> {
        let output = self
            .command()
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(self.unreachable(last_line(&output.stderr)))
        }
    }
}

/// The last non-empty line of a program's error output: where `ctr` says what went wrong.
fn last_line(output: &[u8]) -> String {
    String::from_utf8_lossy(output)
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no message")
        .to_string()
}

#[async_trait]
impl ImageLoader for Containerd {
    fn describe(&self) -> String {
        format!("containerd[{}]", self.namespace)
    }

    /// containerd names images by manifest, not by config, and an import of content it holds
    /// already moves nothing new into it: every image is imported.
    async fn has_image(&self, _name: &str, _config: &Digest) -> Result<bool> {
        Ok(false)
    }

    async fn load(&self, name: &str, mut archive: ByteStream) -> Result<()> {
        let mut command = self.command();
        command.args(["images", "import"]);
        if let Some(snapshotter) = &self.snapshotter {
            command.arg("--snapshotter").arg(snapshotter);
        }
        let mut child = command
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.unreachable(e.to_string()))?;
        let mut stdin = child.stdin.take();
        let mut broken = None;
        if let Some(input) = stdin.as_mut() {
            while let Some(chunk) = archive.next().await {
                let written = match chunk {
                    Ok(bytes) => input.write_all(&bytes).await,
                    Err(error) => {
                        broken = Some(Error::from(error));
                        break;
                    }
                };
                if let Err(error) = written {
                    // ctr stopped reading: its exit status and message say why.
                    tracing::debug!(%error, "ctr stopped reading the archive");
                    break;
                }
            }
        }
        if let Some(error) = broken {
            // A broken archive must not be imported: stop ctr before it sees the end.
            let _ = child.kill().await;
            return Err(error);
        }
        drop(stdin);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::LoadRejected {
                engine: self.describe(),
                name: name.to_string(),
                message: last_line(&output.stderr),
            })
        }
    }
}
