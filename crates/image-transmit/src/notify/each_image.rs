//! Robots told of each image as it finishes, not when the whole job does: what `watch`
//! promises (an image copied at night is announced then, not after the cycle's last one). An
//! observer of the job's events; the messages go out on their own tasks, so a slow robot
//! never holds up a transfer, and [`EachImage::flush`] waits for them before the job's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine::{Event, ImageId, ImageReport, ImageStatus, Observer};
use tokio::task::JoinSet;

use super::Notifier;

/// What is known of an image between its start and its end.
struct Started {
    line: String,
    source: String,
    target: String,
    size: u64,
    at: Instant,
}

pub(crate) struct EachImage {
    notifier: Notifier,
    command: &'static str,
    images: Mutex<HashMap<ImageId, Started>>,
    sending: Mutex<JoinSet<()>>,
    runtime: tokio::runtime::Handle,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EachImage {
    /// Must be made inside the runtime the job runs on.
    pub(crate) fn new(notifier: Notifier, command: &'static str) -> Arc<EachImage> {
        Arc::new(EachImage {
            notifier,
            command,
            images: Mutex::new(HashMap::new()),
            sending: Mutex::new(JoinSet::new()),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Waits until every image's message is sent (each robot has its own time limit).
    pub(crate) async fn flush(&self) {
        let mut sending = std::mem::take(&mut *lock(&self.sending));
        while sending.join_next().await.is_some() {}
    }

    fn finished(&self, image: ImageId, status: ImageStatus) {
        let Some(started) = lock(&self.images).remove(&image) else {
            return;
        };
        let report = ImageReport {
            id: image,
            line: started.line,
            source: started.source,
            target: started.target,
            status,
            size: started.size,
            elapsed: started.at.elapsed(),
        };
        let notifier = self.notifier.clone();
        let command = self.command;
        let _guard = self.runtime.enter();
        lock(&self.sending).spawn(async move {
            notifier
                .image_finished(command, &report, report.size, report.elapsed)
                .await;
        });
    }
}

impl Observer for EachImage {
    fn event(&self, event: &Event) {
        match event {
            Event::ImageStarted {
                image,
                line,
                source,
                target,
            } => {
                lock(&self.images).insert(
                    *image,
                    Started {
                        line: line.clone(),
                        source: source.clone(),
                        target: target.clone(),
                        size: 0,
                        at: Instant::now(),
                    },
                );
            }
            Event::ImageSized { image, bytes } => {
                if let Some(started) = lock(&self.images).get_mut(image) {
                    started.size = *bytes;
                }
            }
            Event::ImageDone {
                image,
                digest,
                unchanged,
            } => self.finished(
                *image,
                ImageStatus::Succeeded {
                    digest: digest.clone(),
                    unchanged: *unchanged,
                },
            ),
            Event::ImageFailed { image, error } => self.finished(
                *image,
                ImageStatus::Failed {
                    error: error.clone(),
                },
            ),
            _ => {}
        }
    }
}
