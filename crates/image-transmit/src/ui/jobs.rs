//! The jobs the web UI starts. Each runs as this same binary in a child process, with the
//! command line the user would type (`copy`, `save`, `upload`, `watch`), so a job from the page
//! is exactly the command-line job, and a crash there cannot take the page down. The child
//! writes engine events as JSON lines (`crate::event_stream`); they and its log lines go to
//! every page watching, and are kept so a page opened later replays them. Stop is Ctrl-C to
//! the child: the same clean stop as in a terminal.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

use crate::event_stream;

/// One job and what it said so far.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) mode: String,
    pub(crate) started: SystemTime,
    /// Everything sent to pages, in order, for pages that connect late.
    events: Mutex<Vec<Value>>,
    live: broadcast::Sender<Value>,
    child_id: Mutex<Option<u32>>,
    /// Set once the child has exited: its exit status and the `--json` report.
    outcome: Mutex<Option<Value>>,
    report_path: PathBuf,
}

impl Job {
    pub(crate) fn summary(&self) -> Value {
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        json!({
            "id": self.id,
            "mode": self.mode,
            "started": jiff::Timestamp::try_from(self.started)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            "running": outcome.is_none(),
            "outcome": outcome,
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// What happened so far and a receiver for what comes next, taken together so that nothing
    /// falls between the two.
    pub(crate) fn subscribe(&self) -> (Vec<Value>, broadcast::Receiver<Value>) {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        (events.clone(), self.live.subscribe())
    }

    fn publish(&self, event: Value) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.push(event.clone());
        // Nobody listening is fine: the replay buffer keeps it.
        let _ = self.live.send(event);
    }

    /// Asks the child to stop as Ctrl-C would: the images in flight are abandoned cleanly
    /// and a save still writes a sound bundle of what finished.
    pub(crate) fn stop(&self) {
        let Some(pid) = *self.child_id.lock().unwrap_or_else(|p| p.into_inner()) else {
            return;
        };
        interrupt(pid);
    }
}

#[cfg(unix)]
fn interrupt(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

#[cfg(not(unix))]
fn interrupt(pid: u32) {
    // Without a console of its own the child cannot get Ctrl-C; end it. A registry never
    // sees a half-pushed image either way: tags are pushed last.
    let _ = std::process::Command::new("taskkill")
        .args(["/PID", &pid.to_string(), "/T", "/F"])
        .status();
}

/// Starts `arguments` as a child of this binary and follows it.
pub(crate) fn start(
    id: u64,
    mode: &str,
    arguments: Vec<String>,
    report_path: PathBuf,
) -> std::io::Result<Arc<Job>> {
    let (live, _) = broadcast::channel(1024);
    let job = Arc::new(Job {
        id,
        mode: mode.to_string(),
        started: SystemTime::now(),
        events: Mutex::new(Vec::new()),
        live,
        child_id: Mutex::new(None),
        outcome: Mutex::new(None),
        report_path: report_path.clone(),
    });
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--json")
        .arg(&report_path)
        .args(&arguments)
        .env(event_stream::ENABLE, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    *job.child_id.lock().unwrap_or_else(|p| p.into_inner()) = child.id();
    job.publish(json!({"kind": "started", "mode": mode, "id": id}));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let following = job.clone();
    tokio::spawn(async move {
        let readers = async {
            tokio::join!(
                follow(&following, stdout, true),
                follow(&following, stderr, false)
            )
        };
        readers.await;
        finish(&following, child).await;
    });
    Ok(job)
}

/// Passes a child's output on, line by line: event lines as events, the rest as log.
async fn follow(job: &Job, output: Option<impl AsyncRead + Unpin>, events: bool) {
    let Some(output) = output else {
        return;
    };
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let event = events
            .then(|| line.strip_prefix(event_stream::PREFIX))
            .flatten()
            .and_then(|json| serde_json::from_str::<Value>(json).ok());
        job.publish(event.unwrap_or_else(|| json!({"kind": "log", "text": line})));
    }
}

async fn finish(job: &Job, mut child: Child) {
    let code = child.wait().await.ok().and_then(|status| status.code());
    // The job's list and its configuration copy (which holds the passwords of registries added
    // on the page) go with it; its report stays for the history.
    let stem = job.report_path.with_extension("");
    let stem = stem.display();
    for leftover in [format!("{stem}.lst"), format!("{stem}-cfg.yaml")] {
        let _ = std::fs::remove_file(leftover);
    }
    let report = std::fs::read(&job.report_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let outcome = json!({"exit": code, "report": report});
    *job.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
    *job.child_id.lock().unwrap_or_else(|p| p.into_inner()) = None;
    job.publish(json!({"kind": "end", "exit": code, "report": report}));
}
