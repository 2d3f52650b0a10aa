//! What the user sees while a job runs: a log line per finished image, and the original
//! tool's status line (Invalid / All / OK / Err / Doing / speeds / totals / time), drawn as
//! indicatif bars on a terminal and printed on a timer when stderr is a file or pipe.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::{BlobOutcome, Event, ImageId, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rust_i18n::t;
use tokio_util::sync::CancellationToken;

use crate::messages::{explain, explain_for};
use crate::printer::{note, say};
use crate::status_format::{StatusCounts, format_status};

/// The status line's counts, as the web UI's event stream sends them once a second.
#[derive(serde::Serialize)]
pub(crate) struct Counts {
    invalid: usize,
    total: usize,
    succeeded: usize,
    failed: usize,
    doing: usize,
    /// Bytes moved so far.
    bytes: u64,
    /// Bytes a second, lately.
    speed: u64,
    elapsed_seconds: u64,
}

/// Counts events and renders them. One per job.
pub(crate) struct Progress {
    started: Instant,
    invalid: AtomicUsize,
    total: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
    doing: AtomicUsize,
    bytes: AtomicU64,
    speed: AtomicU64,
    images: Mutex<HashMap<ImageId, (String, String)>>,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    status: ProgressBar,
    /// Each image's bar, and whether it is on the screen yet: it shows once the image's first
    /// blob starts moving, so the many images checked at once over a long link (most of them
    /// waiting, or finding everything in place) do not fill the terminal.
    per_image: Mutex<HashMap<ImageId, (ProgressBar, bool)>>,
}

/// How often the status line is refreshed, as in the original.
const TICK: Duration = Duration::from_secs(1);

impl Progress {
    /// Bars when stderr is a terminal, timed status lines otherwise; neither under `--quiet`.
    pub(crate) fn new() -> Arc<Progress> {
        let bars = (std::io::stderr().is_terminal() && !crate::printer::is_quiet()).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let status = multi.add(ProgressBar::new_spinner());
            status.set_style(
                // wide_msg: the status line is cut at the terminal's edge instead of wrapping.
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            Bars {
                multi,
                status,
                per_image: Mutex::new(HashMap::new()),
            }
        });
        Arc::new(Progress {
            started: Instant::now(),
            invalid: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            doing: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            speed: AtomicU64::new(0),
            images: Mutex::new(HashMap::new()),
            bars,
        })
    }

    /// Refreshes the status line every second until `stop`, then once more.
    pub(crate) fn spawn_ticker(
        self: &Arc<Self>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let progress = self.clone();
        tokio::spawn(async move {
            let mut last_bytes = 0;
            let mut last_line = String::new();
            let mut ticker = tokio::time::interval(TICK);
            ticker.tick().await;
            loop {
                let stopping = tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = ticker.tick() => false,
                };
                let bytes = progress.bytes.load(Relaxed);
                // While running: the last second's rate; at the end: the job's average.
                let speed = if stopping {
                    let elapsed = progress.started.elapsed().as_millis().max(1) as u64;
                    bytes.saturating_mul(1000) / elapsed
                } else {
                    (bytes - last_bytes) * 1000 / TICK.as_millis() as u64
                };
                progress.speed.store(speed, Relaxed);
                last_bytes = bytes;
                let line = progress.status_line();
                match &progress.bars {
                    Some(bars) => bars.status.set_message(line.clone()),
                    // The web UI gets the status from the event stream instead.
                    None if crate::event_stream::enabled() => {}
                    None if line != last_line || stopping => note!("{line}"),
                    None => {}
                }
                last_line = line;
                if stopping {
                    if let Some(bars) = &progress.bars {
                        bars.status.finish_with_message(last_line);
                    }
                    return;
                }
            }
        })
    }

    pub(crate) fn status_line(&self) -> String {
        let bytes = self.bytes.load(Relaxed);
        let speed = self.speed.load(Relaxed);
        format_status(&StatusCounts {
            invalid: self.invalid.load(Relaxed) as u64,
            total: self.total.load(Relaxed) as u64,
            succeeded: self.succeeded.load(Relaxed) as u64,
            failed: self.failed.load(Relaxed) as u64,
            doing: self.doing.load(Relaxed) as u64,
            down_bytes: bytes,
            up_bytes: bytes,
            down_speed: speed,
            up_speed: speed,
            elapsed: self.started.elapsed(),
        })
    }

    /// The status line's figures, for the web UI's event stream.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            invalid: self.invalid.load(Relaxed),
            total: self.total.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            doing: self.doing.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            speed: self.speed.load(Relaxed),
            elapsed_seconds: self.started.elapsed().as_secs(),
        }
    }

    /// A log line, printed above the bars when there are bars.
    pub(crate) fn log(&self, line: &str) {
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| say!("{line}")),
            None => say!("{line}"),
        }
    }

    fn image_names(&self, image: ImageId) -> (String, String) {
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&image)
            .cloned()
            .unwrap_or_default()
    }

    /// The bar of an image in flight (bars are cheap handles to shared state).
    fn bar(&self, image: ImageId) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let per_image = bars.per_image.lock().unwrap_or_else(|p| p.into_inner());
        per_image.get(&image).map(|(bar, _)| bar.clone())
    }

    fn finish_bar(&self, image: ImageId) {
        if let Some(bars) = &self.bars
            && let Some((bar, shown)) = bars
                .per_image
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&image)
        {
            bar.finish_and_clear();
            if shown {
                bars.multi.remove(&bar);
            }
        }
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event) {
        match event {
            Event::JobStarted { images } => {
                self.total.fetch_add(*images, Relaxed);
            }
            Event::ImageInvalid { line, error } => {
                self.invalid.fetch_add(1, Relaxed);
                self.log(&t!(
                    "log.invalid_image",
                    line = line,
                    reason = explain_for(line, error)
                ));
            }
            Event::ImageStarted {
                image,
                source,
                target,
                ..
            } => {
                self.doing.fetch_add(1, Relaxed);
                self.images
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(*image, (source.clone(), target.clone()));
                if let Some(bars) = &self.bars {
                    // No length until the manifests are read: an empty bar, not a full one.
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
                    bar.set_style(
                        // 56 columns before the name, which is cut to fit an 80-column terminal.
                        ProgressStyle::with_template(
                            "  [{bar:20}] {bytes:>9}/{total_bytes:<9} {bytes_per_sec:>11} {wide_msg}",
                        )
                        .map(|style| style.progress_chars("=> "))
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_message(target.clone());
                    bars.per_image
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(*image, (bar, false));
                }
            }
            Event::BlobStarted { image, .. } => {
                if let Some(bars) = &self.bars
                    && let Some((bar, shown)) = bars
                        .per_image
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(image)
                    && !*shown
                {
                    bars.multi.add(bar.clone());
                    *shown = true;
                }
            }
            Event::BlobProgress { image, bytes } => {
                self.bytes.fetch_add(*bytes, Relaxed);
                if let Some(bar) = self.bar(*image) {
                    bar.inc(*bytes);
                }
            }
            Event::ImageSized { image, bytes } => {
                if let Some(bar) = self.bar(*image) {
                    bar.set_length(*bytes);
                    bar.set_position(0);
                }
            }
            // Blobs the destination already had count as done at once.
            Event::BlobDone {
                image,
                size,
                outcome: BlobOutcome::Existed | BlobOutcome::Mounted,
                ..
            } => {
                if let Some(bar) = self.bar(*image) {
                    bar.inc(*size);
                }
            }
            Event::IndexFiltered {
                original, filtered, ..
            } => {
                self.log(&t!(
                    "summary.index_digest_changed",
                    old = original.short(),
                    new = filtered.short()
                ));
            }
            Event::ImageRetrying {
                image,
                attempt,
                error,
                ..
            } => {
                let (source, _) = self.image_names(*image);
                self.log(&t!(
                    "log.retrying",
                    image = source,
                    attempt = attempt,
                    reason = explain(error)
                ));
            }
            Event::ImageDone {
                image, unchanged, ..
            } => {
                self.doing.fetch_sub(1, Relaxed);
                self.succeeded.fetch_add(1, Relaxed);
                self.finish_bar(*image);
                let (source, target) = self.image_names(*image);
                let key = if *unchanged {
                    "summary.already_present"
                } else {
                    "summary.copied"
                };
                self.log(&t!(key, src = source, dst = target));
            }
            Event::ImageFailed { image, error } => {
                self.doing.fetch_sub(1, Relaxed);
                self.failed.fetch_add(1, Relaxed);
                self.finish_bar(*image);
                let (source, _) = self.image_names(*image);
                self.log(&t!(
                    "log.image_failed",
                    image = source,
                    reason = explain_for(&source, error)
                ));
            }
            Event::BlobDone { .. } | Event::JobDone => {}
        }
    }
}
