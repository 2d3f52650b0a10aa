//! The jobs the web UI starts. Each runs as this same binary in a child process, with the
//! command line the user would type (`copy`, `save`, `upload`, `watch`), so a job from the page
//! is exactly the command-line job, and a crash there cannot take the page down. The child
//! writes engine events as JSON lines (`crate::event_stream`); they and its log lines go to
//! every page watching, and are kept so a page opened later replays them. Stop is a line on the
//! child's standard input, which it treats as Ctrl-C (`event_stream::stop_requested`): the same
//! clean stop as in a terminal, on every platform. A second Stop ends the child at once.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{broadcast, oneshot};

use crate::event_stream;

/// One job and what it said so far.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) mode: String,
    pub(crate) started: SystemTime,
    /// Everything sent to pages, in order, for pages that connect late.
    events: Mutex<Vec<Value>>,
    live: broadcast::Sender<Value>,
    /// The child's standard input until Stop uses it.
    stop_line: tokio::sync::Mutex<Option<ChildStdin>>,
    /// Ends the child at once: what a second Stop does.
    kill: Mutex<Option<oneshot::Sender<()>>>,
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
            "started": chrono::DateTime::<chrono::Utc>::from(self.started).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
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
    /// and a save still writes a sound bundle of what finished. Asked again, ends it at once.
    /// An error says, in the user's language, why the request did not reach the child.
    pub(crate) async fn stop(&self) -> Result<(), String> {
        if !self.is_running() {
            return Ok(());
        }
        let stop_line = self.stop_line.lock().await.take();
        let Some(mut stop_line) = stop_line else {
            if let Some(kill) = self.kill.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = kill.send(());
            }
            return Ok(());
        };
        let sent = async {
            stop_line.write_all(b"stop\n").await?;
            stop_line.flush().await
        };
        match sent.await {
            Ok(()) => Ok(()),
            // It ended meanwhile: nothing left to stop.
            Err(_) if !self.is_running() => Ok(()),
            Err(error) => {
                Err(rust_i18n::t!("ui.stop_failed", detail = error.to_string()).to_string())
            }
        }
    }
}

/// Starts `arguments` as a child of this binary and follows it.
pub(crate) fn start(
    id: u64,
    mode: &str,
    arguments: Vec<String>,
    environment: &[(&str, String)],
    report_path: PathBuf,
) -> std::io::Result<Arc<Job>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(&arguments).env(event_stream::ENABLE, "1");
    for (name, value) in environment {
        command.env(name, value);
    }
    // A watch never ends with a report; every other job leaves one for the history.
    if mode != "watch" {
        command.arg("--json").arg(&report_path);
    }
    start_command(id, mode, command, report_path)
}

/// Starts `command` as the job's child, its standard streams piped, and follows it.
fn start_command(
    id: u64,
    mode: &str,
    mut command: Command,
    report_path: PathBuf,
) -> std::io::Result<Arc<Job>> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (live, _) = broadcast::channel(1024);
    let (kill, killed) = oneshot::channel();
    let job = Arc::new(Job {
        id,
        mode: mode.to_string(),
        started: SystemTime::now(),
        events: Mutex::new(Vec::new()),
        live,
        stop_line: tokio::sync::Mutex::new(child.stdin.take()),
        kill: Mutex::new(Some(kill)),
        outcome: Mutex::new(None),
        report_path,
    });
    job.publish(json!({"kind": "started", "mode": mode, "id": id}));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let following = job.clone();
    tokio::spawn(async move {
        let (_, _, code) = tokio::join!(
            follow(&following, stdout, true),
            follow(&following, stderr, false),
            wait(child, killed)
        );
        finish(&following, code);
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

/// The child's exit status, once it exits by itself or is ended by `kill`.
async fn wait(mut child: Child, kill: oneshot::Receiver<()>) -> Option<i32> {
    tokio::select! {
        status = child.wait() => return status.ok().and_then(|status| status.code()),
        Ok(()) = kill => {}
    }
    let _ = child.start_kill();
    child.wait().await.ok().and_then(|status| status.code())
}

fn finish(job: &Job, code: Option<i32>) {
    // The job's list goes with it; its report stays for the history.
    let _ = fs_err::remove_file(job.report_path.with_extension("lst"));
    let report = fs_err::read(&job.report_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let outcome = json!({"exit": code, "report": report});
    *job.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
    job.kill.lock().unwrap_or_else(|p| p.into_inner()).take();
    job.publish(json!({"kind": "end", "exit": code, "report": report}));
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A child that cannot be asked to stop (it closed its standard input): the page is told
    /// why, and a second Stop ends the child at once.
    #[tokio::test]
    async fn a_stop_request_that_cannot_be_delivered_is_reported_and_stop_again_ends_the_job() {
        let scratch = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "exec 0<&-; echo ready; exec sleep 30"]);
        let job = start_command(1, "transmit", command, scratch.path().join("job.json")).unwrap();
        let ready = async {
            while !job
                .subscribe()
                .0
                .iter()
                .any(|event| event["text"] == "ready")
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .unwrap();

        let refused = job.stop().await.unwrap_err();
        assert!(refused.contains("os error"), "{refused}");
        assert!(job.is_running());

        job.stop().await.unwrap();
        let ended = async {
            while job.is_running() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ended)
            .await
            .unwrap();
    }
}
