//! The engine's events as JSON lines on standard output, for the web UI: it runs each job as
//! this same binary in a child process (so a job is exactly what the command line does) and reads
//! what happens from these lines. Standard input goes the other way: a line there, or its end,
//! asks the job to stop as Ctrl-C would ([`stop_requested`]). That works alike on every
//! platform: a Windows child started without a console cannot be sent Ctrl-C. Each is `@event ` and one JSON
//! object; everything else on the output stays the human log.
//!
//! Per-image events go out as they happen; the bytes of images in flight and the status line's
//! counts go out once a second, so a fast transfer does not flood the pipe.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use engine::{Event, ImageId, Observer};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::messages::{explain, explain_for};
use crate::printer::out;
use crate::progress::Progress;

/// Set by the web UI for the jobs it starts.
pub(crate) const ENABLE: &str = "IMAGE_TRANSMIT_EVENTS";
/// What starts each event line.
pub(crate) const PREFIX: &str = "@event ";

pub(crate) fn enabled() -> bool {
    std::env::var_os(ENABLE).is_some_and(|value| value == "1")
}

/// Resolves at the next request to stop from the web UI that started this job: a line on
/// standard input, or its end (the UI's server went away). As with Ctrl-C, a request wakes every
/// caller waiting at that moment, and a caller that starts waiting later waits for the next one
/// (watch's "again to stop at once"). Never resolves for a job the UI did not start.
pub(crate) async fn stop_requested() {
    static REQUESTS: OnceLock<tokio::sync::watch::Sender<u64>> = OnceLock::new();
    if !enabled() {
        return std::future::pending().await;
    }
    let requests = REQUESTS.get_or_init(|| {
        let (requests, _) = tokio::sync::watch::channel(0);
        let reader = requests.clone();
        // A thread of its own, not the runtime's blocking pool: a read that never returns must
        // not hold up the runtime's shutdown when the job ends by itself.
        let _ = std::thread::Builder::new()
            .name("stop-requests".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut line = String::new();
                    let ended = !matches!(stdin.read_line(&mut line), Ok(read) if read > 0);
                    reader.send_modify(|count| *count += 1);
                    if ended {
                        return;
                    }
                }
            });
        requests
    });
    let mut next = requests.subscribe();
    if next.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One line of the stream: the UI's parser (`ui/assets`) reads these fields and no others.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StreamEvent<'a> {
    JobStarted {
        images: usize,
    },
    Invalid {
        line: &'a str,
        error: String,
    },
    ImageStarted {
        image: ImageId,
        source: &'a str,
        target: &'a str,
    },
    ImageDone {
        image: ImageId,
        digest: String,
        unchanged: bool,
    },
    ImageFailed {
        image: ImageId,
        error: String,
    },
    JobDone,
    /// Once a second: the status line, its counts, and the bytes of each image in flight.
    Status {
        line: String,
        counts: crate::progress::Counts,
        images: Vec<ImageBytes>,
    },
}

#[derive(Serialize)]
struct ImageBytes {
    image: ImageId,
    done: u64,
    total: u64,
}

fn emit(event: &StreamEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        out!("{PREFIX}{line}");
    }
}

#[derive(Default)]
struct InFlight {
    total: u64,
    done: u64,
}

/// Writes events as they come and, from [`spawn_ticker`](Self::spawn_ticker), the progress.
#[derive(Default)]
pub(crate) struct EventStream {
    in_flight: Mutex<BTreeMap<ImageId, InFlight>>,
}

impl EventStream {
    pub(crate) fn new() -> Arc<EventStream> {
        Arc::new(EventStream::default())
    }

    fn with_image(&self, image: ImageId, change: impl FnOnce(&mut InFlight)) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        change(in_flight.entry(image).or_default());
    }

    fn progress(&self, progress: &Progress) -> StreamEvent<'static> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let images = in_flight
            .iter()
            .map(|(image, bytes)| ImageBytes {
                image: *image,
                done: bytes.done,
                total: bytes.total,
            })
            .collect();
        StreamEvent::Status {
            line: progress.status_line(),
            counts: progress.counts(),
            images,
        }
    }

    /// Sends the status once a second until `stop`, then a last time.
    pub(crate) fn spawn_ticker(
        self: &Arc<Self>,
        progress: Arc<Progress>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let stream = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                let stopping = tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = ticker.tick() => false,
                };
                emit(&stream.progress(&progress));
                if stopping {
                    return;
                }
            }
        })
    }
}

impl Observer for EventStream {
    fn event(&self, event: &Event) {
        match event {
            Event::JobStarted { images } => emit(&StreamEvent::JobStarted { images: *images }),
            Event::ImageInvalid { line, error } => emit(&StreamEvent::Invalid {
                line,
                error: explain_for(line, error),
            }),
            Event::ImageStarted {
                image,
                source,
                target,
                ..
            } => {
                self.with_image(*image, |_| {});
                emit(&StreamEvent::ImageStarted {
                    image: *image,
                    source,
                    target,
                });
            }
            Event::ImageSized { image, bytes } => self.with_image(*image, |state| {
                state.total = *bytes;
                state.done = 0;
            }),
            Event::BlobProgress { image, bytes } => {
                self.with_image(*image, |state| state.done += bytes);
            }
            Event::BlobDone {
                image,
                size,
                outcome: engine::BlobOutcome::Existed | engine::BlobOutcome::Mounted,
                ..
            } => self.with_image(*image, |state| state.done += size),
            Event::ImageDone {
                image,
                digest,
                unchanged,
            } => {
                self.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(image);
                emit(&StreamEvent::ImageDone {
                    image: *image,
                    digest: digest.to_string(),
                    unchanged: *unchanged,
                });
            }
            Event::ImageFailed { image, error } => {
                self.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(image);
                emit(&StreamEvent::ImageFailed {
                    image: *image,
                    error: explain(error),
                });
            }
            Event::JobDone => emit(&StreamEvent::JobDone),
            Event::BlobStarted { .. }
            | Event::BlobDone { .. }
            | Event::IndexFiltered { .. }
            | Event::ImageRetrying { .. } => {}
        }
    }
}
