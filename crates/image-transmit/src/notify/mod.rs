//! Tells chat groups and other services how a job went: DingTalk robots as the original did,
//! plus WeCom and Feishu group robots and a generic JSON webhook.
//!
//! A notification is a courtesy, never part of the transfer: every robot gets the message at
//! the same time, each request gives up after [`SEND_TIMEOUT`], and a failure is one warning
//! line on stderr. Tokens, keys, secrets and webhook addresses never appear in that line: a
//! robot is named by its place in cfg.yaml (`dingtalk[0]`).
//!
//! This module says what an event is ([`Message`]: the job's and an image's) and sends it to
//! every robot; `robots` holds what differs per service (the body, the signature, the
//! endpoint, reading its answer) and builds a robot from its cfg.yaml entry; `each_image`
//! tells watch's robots of each image as it finishes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use engine::{ImageReport, ImageStatus, JobReport};
use rust_i18n::t;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::i18n;
use crate::messages::explain;
use crate::printer::alert;
use crate::status_format::{StatusCounts, format_bytes, format_elapsed, format_status_in};

mod each_image;
pub(crate) use each_image::EachImage;
mod robots;

use robots::{Robot, dingtalk, feishu, webhook, wecom};

/// How long one robot may take to answer, as in the original: a slow chat service must not
/// hold up the end of a job, let alone a watch cycle.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Failed and invalid images listed in a chat message before the rest are only counted:
/// chat services cap a message at a few kilobytes.
const LISTED_PROBLEMS: usize = 10;

/// The robots cfg.yaml configures, ready to send. Cloning shares them.
#[derive(Clone, Default)]
pub(crate) struct Notifier {
    /// `None` when nothing is configured, so that a job without robots builds no HTTP client.
    inner: Option<Arc<Inner>>,
}

struct Inner {
    client: reqwest::Client,
    robots: Vec<Robot>,
}

impl fmt::Debug for Notifier {
    /// Only the labels: every other part of a robot is or may be a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self
            .inner
            .iter()
            .flat_map(|inner| inner.robots.iter().map(|robot| robot.label.as_str()))
            .collect();
        f.debug_struct("Notifier").field("robots", &labels).finish()
    }
}

/// What one event says, before each service's format is applied.
struct Message {
    /// The first line, a heading in the chat services that have one.
    heading: String,
    /// One line each; a list in markdown, a paragraph in Feishu's rich text.
    lines: Vec<String>,
    /// What the generic webhook gets.
    document: Value,
}

impl Notifier {
    /// The robots of `config`. An entry that cannot work (no token, an address that does not
    /// parse) is warned about and left out rather than failing the job it would report on.
    pub(crate) fn from_config(config: &Config) -> Notifier {
        let robots: Vec<Robot> = config
            .dingtalk
            .iter()
            .enumerate()
            .filter_map(|(index, robot)| dingtalk(index, robot))
            .chain(
                config
                    .wecom
                    .iter()
                    .enumerate()
                    .filter_map(|(index, robot)| wecom(index, robot)),
            )
            .chain(
                config
                    .feishu
                    .iter()
                    .enumerate()
                    .filter_map(|(index, robot)| feishu(index, robot)),
            )
            .chain(
                config
                    .webhook
                    .iter()
                    .enumerate()
                    .filter_map(|(index, hook)| webhook(index, hook)),
            )
            .collect();
        if robots.is_empty() {
            return Notifier::default();
        }
        match http_client() {
            Ok(client) => Notifier {
                inner: Some(Arc::new(Inner { client, robots })),
            },
            Err(error) => {
                alert!(
                    "{}",
                    t!(
                        "notify.no_client",
                        detail = error_chain(&error.without_url())
                    )
                );
                Notifier::default()
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// End of a job in any mode (copy, save, upload, load, watch cycle).
    pub(crate) async fn job_finished(
        &self,
        command: &str,
        source: &str,
        target: &str,
        report: &JobReport,
    ) {
        if self.is_empty() {
            return;
        }
        self.send(job_message(command, source, target, report))
            .await;
    }

    /// One image finished in watch mode (success or failure).
    pub(crate) async fn image_finished(
        &self,
        command: &str,
        image: &ImageReport,
        bytes: u64,
        elapsed: Duration,
    ) {
        if self.is_empty() {
            return;
        }
        self.send(image_message(command, image, bytes, elapsed))
            .await;
    }

    /// Sends to every robot at once and waits for all of them (each within the timeout).
    async fn send(&self, message: Message) {
        let Some(inner) = &self.inner else {
            return;
        };
        let message = Arc::new(message);
        let mut sending = JoinSet::new();
        for index in 0..inner.robots.len() {
            let inner = inner.clone();
            let message = message.clone();
            sending.spawn(async move {
                let robot = &inner.robots[index];
                if let Err(detail) = robot.send(&inner.client, &message).await {
                    alert!(
                        "{}",
                        t!("notify.send_failed", robot = robot.label, detail = detail)
                    );
                }
            });
        }
        while sending.join_next().await.is_some() {}
    }
}

/// An error and its causes on one line; the causes are where hyper and rustls say what happened.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let part = error.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = error.source();
    }
    text
}

fn job_message(command: &str, source: &str, target: &str, report: &JobReport) -> Message {
    let language = i18n::current_language();
    let elapsed_millis = report.elapsed.as_millis().max(1);
    let speed = u64::try_from(u128::from(report.bytes_transferred) * 1000 / elapsed_millis)
        .unwrap_or(u64::MAX);
    let status = format_status_in(
        &StatusCounts {
            invalid: report.invalid.len() as u64,
            total: (report.images.len() + report.invalid.len()) as u64,
            succeeded: report.succeeded() as u64,
            failed: report.failed() as u64,
            doing: 0,
            down_bytes: report.bytes_transferred,
            up_bytes: report.bytes_transferred,
            down_speed: speed,
            up_speed: speed,
            elapsed: report.elapsed,
        },
        language,
    );
    let mut lines = vec![
        t!(
            "notify.job",
            command = command,
            source = source,
            target = target
        )
        .into_owned(),
        t!("notify.stat", status = status).into_owned(),
    ];
    if report.cancelled {
        lines.push(t!("error.interrupted").into_owned());
    }
    let problems: Vec<String> = report
        .images
        .iter()
        .filter_map(|image| match &image.status {
            ImageStatus::Failed { error } => Some(
                t!(
                    "log.image_failed",
                    image = image.source,
                    reason = explain(error)
                )
                .into_owned(),
            ),
            ImageStatus::Succeeded { .. } => None,
        })
        .chain(report.invalid.iter().map(|(line, error)| {
            t!("log.invalid_image", line = line, reason = explain(error)).into_owned()
        }))
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        let more = problems.len() - LISTED_PROBLEMS;
        lines.extend(problems.into_iter().take(LISTED_PROBLEMS));
        lines.push(t!("notify.more", count = more).into_owned());
    } else {
        lines.extend(problems);
    }

    let document = JobFinished {
        event: "job_finished",
        status: if report.cancelled {
            "cancelled"
        } else if report.all_done() {
            "succeeded"
        } else {
            "failed"
        },
        job: crate::report::document(command, source, target, report),
    };
    Message {
        heading: t!("notify.job_finished").into_owned(),
        lines,
        document: serde_json::to_value(document).unwrap_or_default(),
    }
}

fn image_message(command: &str, image: &ImageReport, bytes: u64, elapsed: Duration) -> Message {
    let language = i18n::current_language();
    let target = t!("notify.image", image = image.target).into_owned();
    let (heading, lines) = match &image.status {
        ImageStatus::Succeeded { .. } => (
            t!("notify.image_succeeded"),
            vec![
                target,
                t!(
                    "notify.image_stat",
                    size = format_bytes(bytes),
                    elapsed = format_elapsed(elapsed, language)
                )
                .into_owned(),
            ],
        ),
        ImageStatus::Failed { error } => (
            t!("notify.image_failed"),
            vec![
                target,
                t!("notify.error", reason = explain(error)).into_owned(),
            ],
        ),
    };
    Message {
        heading: heading.into_owned(),
        lines,
        document: serde_json::to_value(ImageFinished {
            event: "image_finished",
            command,
            image: crate::report::image(image),
            bytes,
            elapsed_seconds: elapsed.as_secs_f64(),
        })
        .unwrap_or_default(),
    }
}

/// The webhook's document at the end of a job: the `--json` report, and what happened.
#[derive(serde::Serialize)]
struct JobFinished<'a> {
    event: &'static str,
    /// `succeeded`, `failed` or `cancelled`.
    status: &'static str,
    #[serde(flatten)]
    job: crate::report::JobDocument<'a>,
}

/// The webhook's document when watch finishes one image.
#[derive(serde::Serialize)]
struct ImageFinished<'a> {
    event: &'static str,
    command: &'a str,
    image: crate::report::ImageDocument,
    bytes: u64,
    elapsed_seconds: f64,
}

/// One HTTP client for every robot, verifying TLS against the system's roots.
fn http_client() -> reqwest::Result<reqwest::Client> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("image-transmit/", env!("CARGO_PKG_VERSION")))
        .timeout(SEND_TIMEOUT)
        .build()
}

/// reqwest is built without a TLS provider of its own, as in the registry crate; whichever
/// part of the program comes first installs ring.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{CHINESE, ENGLISH, LOCALE_LOCK};
    use std::sync::MutexGuard;

    use super::robots::markdown;

    pub(super) fn in_locale(locale: &str) -> MutexGuard<'static, ()> {
        let guard = LOCALE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rust_i18n::set_locale(locale);
        guard
    }

    fn image(index: usize, status: ImageStatus) -> ImageReport {
        ImageReport {
            id: index,
            line: format!("app{index}:1"),
            source: format!("src.local/app{index}:1"),
            target: format!("dst.local/app{index}:1"),
            status,
            size: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn succeeded(index: usize) -> ImageReport {
        image(
            index,
            ImageStatus::Succeeded {
                digest: registry::Digest::of(b"manifest"),
                unchanged: false,
            },
        )
    }

    fn failed(index: usize) -> ImageReport {
        image(
            index,
            ImageStatus::Failed {
                error: Arc::new(engine::Error::Cancelled),
            },
        )
    }

    fn report(images: Vec<ImageReport>) -> JobReport {
        JobReport {
            images,
            bytes_transferred: 3 << 20,
            elapsed: Duration::from_secs(65),
            ..JobReport::default()
        }
    }

    #[test]
    fn job_message_in_english() {
        let _guard = in_locale(ENGLISH);
        let message = job_message(
            "copy",
            "src.local",
            "dst.local",
            &report(vec![succeeded(0), failed(1)]),
        );
        assert_eq!(
            markdown(&message),
            "### Transmit Task End\n\
             - Job: copy src.local -> dst.local\n\
             - Stat: Invalid:0 All:2 OK:1 Err:1 Doing:0 Speed:↓47.3KB/s ↑47.3KB/s Total:↓3.0MB ↑3.0MB Time:1M5S\n\
             - Failed: src.local/app1:1: Interrupted by user"
        );
        let document = &message.document;
        assert_eq!(document["event"], "job_finished");
        assert_eq!(document["status"], "failed");
        assert_eq!(document["command"], "copy");
        assert_eq!(document["summary"]["succeeded"], 1);
        assert_eq!(document["images"][1]["error"], "Interrupted by user");
        assert_eq!(document["bytes_transferred"], 3 << 20);
        assert_eq!(document["elapsed_seconds"], 65.0);
    }

    #[test]
    fn job_message_in_chinese() {
        let _guard = in_locale(CHINESE);
        let message = job_message("save", "src.local", "img_full", &report(vec![succeeded(0)]));
        let text = markdown(&message);
        rust_i18n::set_locale(ENGLISH);
        assert!(
            text.starts_with(
                "### 传输任务结束\n- 任务：save src.local -> img_full\n- 统计：无效:0 总计:1 成功:1"
            ),
            "{text}"
        );
        assert_eq!(message.document["status"], "succeeded");
    }

    #[test]
    fn long_problem_lists_are_cut() {
        let _guard = in_locale(ENGLISH);
        let message = job_message(
            "copy",
            "a",
            "b",
            &report((0..LISTED_PROBLEMS + 3).map(failed).collect()),
        );
        assert_eq!(message.lines.len(), 2 + LISTED_PROBLEMS + 1);
        assert_eq!(message.lines.last().unwrap(), "... and 3 more");
        assert_eq!(
            message.document["images"].as_array().unwrap().len(),
            LISTED_PROBLEMS + 3,
            "the webhook still gets every image"
        );
    }

    #[test]
    fn image_messages_say_target_size_time_or_error() {
        let _guard = in_locale(ENGLISH);
        let done = image_message("watch", &succeeded(0), 5 << 20, Duration::from_secs(3));
        assert_eq!(
            markdown(&done),
            "### Transmit Success\n- Image: dst.local/app0:1\n- Size: 5.0MB, time: 3S"
        );
        assert_eq!(done.document["event"], "image_finished");
        assert_eq!(done.document["image"]["status"], "copied");
        assert_eq!(done.document["bytes"], 5 << 20);
        let lost = image_message("watch", &failed(1), 0, Duration::from_secs(1));
        assert_eq!(
            markdown(&lost),
            "### Transmit Failed\n- Image: dst.local/app1:1\n- Error: Interrupted by user"
        );
        rust_i18n::set_locale(CHINESE);
        let chinese = markdown(&image_message("watch", &failed(1), 0, Duration::ZERO));
        rust_i18n::set_locale(ENGLISH);
        assert_eq!(
            chinese,
            "### 传输失败\n- 镜像：dst.local/app1:1\n- 错误：已被用户中断"
        );
    }

    #[tokio::test]
    async fn an_empty_notifier_sends_nothing_and_returns() {
        let notifier = Notifier::default();
        notifier
            .job_finished("copy", "a", "b", &JobReport::default())
            .await;
        notifier
            .image_finished("watch", &succeeded(0), 0, Duration::ZERO)
            .await;
    }
}
