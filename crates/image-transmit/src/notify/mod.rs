//! Tells chat groups and other services how a job went: DingTalk robots as the original did,
//! plus WeCom and Feishu group robots and a generic JSON webhook.
//!
//! A notification is a courtesy, never part of the transfer: every robot gets the message at
//! the same time, each request gives up after [`SEND_TIMEOUT`], and a failure is one warning
//! line on stderr. Tokens, keys, secrets and webhook addresses never appear in that line: a
//! robot is named by its place in cfg.yaml (`dingtalk[0]`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use engine::{ImageReport, ImageStatus, JobReport};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rust_i18n::t;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::config::{Config, DingTalkRobot, FeishuRobot, WeComRobot, Webhook};
use crate::i18n;
use crate::messages::explain;
use crate::printer::alert;
use crate::status_format::{StatusCounts, format_bytes, format_elapsed, format_status_in};

mod each_image;
pub(crate) use each_image::EachImage;

/// How long one robot may take to answer, as in the original: a slow chat service must not
/// hold up the end of a job, let alone a watch cycle.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

const DINGTALK_URL: &str = "https://oapi.dingtalk.com/robot/send";
const WECOM_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
const FEISHU_URL: &str = "https://open.feishu.cn/open-apis/bot/v2/hook";

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

/// One destination, with the name it is reported under.
struct Robot {
    /// `dingtalk[0]`, `webhook[2]`: the entry's place in cfg.yaml.
    label: String,
    kind: RobotKind,
}

enum RobotKind {
    DingTalk {
        url: Url,
        token: String,
        secret: String,
    },
    WeCom {
        url: Url,
    },
    Feishu {
        url: Url,
        secret: Option<String>,
    },
    Webhook {
        url: Url,
        headers: HeaderMap,
    },
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

impl Robot {
    /// Posts `message` in this robot's format; the error is a sentence for the warning line.
    async fn send(&self, client: &reqwest::Client, message: &Message) -> Result<(), String> {
        let (url, body, headers) = match &self.kind {
            RobotKind::DingTalk { url, token, secret } => {
                let mut url = url.clone();
                url.query_pairs_mut().append_pair("access_token", token);
                // A robot secured by keywords or an IP list instead of signing has no secret.
                if !secret.is_empty() {
                    let timestamp = unix_millis();
                    url.query_pairs_mut()
                        .append_pair("timestamp", &timestamp.to_string())
                        .append_pair("sign", &dingtalk_sign(timestamp, secret));
                }
                (url, dingtalk_body(message), None)
            }
            RobotKind::WeCom { url } => (url.clone(), wecom_body(message), None),
            RobotKind::Feishu { url, secret } => {
                let signature = secret.as_deref().map(|secret| {
                    let timestamp = unix_millis() / 1000;
                    (timestamp, feishu_sign(timestamp, secret))
                });
                (url.clone(), feishu_body(message, signature), None)
            }
            RobotKind::Webhook { url, headers } => {
                (url.clone(), webhook_body(message), Some(headers))
            }
        };
        let mut request = client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(headers) = headers {
            request = request.headers(headers.clone());
        }
        let response = request.send().await.map_err(send_error)?;
        let status = response.status();
        let text = answer_text(response).await.map_err(send_error)?;
        if !status.is_success() {
            return Err(t!(
                "notify.http_status",
                status = status.as_u16(),
                body = excerpt(&text)
            )
            .into_owned());
        }
        match &self.kind {
            RobotKind::Webhook { .. } => Ok(()),
            // The chat services answer 200 to a refused message and say why in the body.
            _ => service_refusal(&text).map_or(Ok(()), Err),
        }
    }
}

/// What is read of a receiver's answer: enough for any service's verdict and an excerpt of an
/// error page; the rest of a long (or endless) answer is never read.
const ANSWER_LIMIT: usize = 64 << 10;

/// The start of an answer's body as text, at most [`ANSWER_LIMIT`] bytes of it.
async fn answer_text(mut response: reqwest::Response) -> reqwest::Result<String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = ANSWER_LIMIT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == ANSWER_LIMIT {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The service's own error from a 200 answer: DingTalk and WeCom set `errcode`, Feishu `code`.
fn service_refusal(text: &str) -> Option<String> {
    let answer: Value = serde_json::from_str(text).ok()?;
    let code = answer
        .get("errcode")
        .or_else(|| answer.get("code"))
        .and_then(Value::as_i64)?;
    if code == 0 {
        return None;
    }
    let reason = answer
        .get("errmsg")
        .or_else(|| answer.get("msg"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(t!("notify.refused", code = code, reason = excerpt(reason)).into_owned())
}

fn send_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        t!("notify.timeout", seconds = SEND_TIMEOUT.as_secs()).into_owned()
    } else {
        // reqwest puts the address, and so the token, into its message.
        error_chain(&error.without_url())
    }
}

/// An error and its causes on one line; the causes are where hyper and rustls say what happened.
fn error_chain(error: &dyn std::error::Error) -> String {
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

/// The start of a reply body, on one line, for a warning.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    BASE64.encode(mac.finalize().into_bytes())
}

/// DingTalk's signature: HMAC-SHA256 keyed by the secret over `timestamp\nsecret`, timestamp
/// in milliseconds. The caller's URL builder percent-encodes it.
fn dingtalk_sign(timestamp_millis: u128, secret: &str) -> String {
    hmac_sha256_base64(
        secret.as_bytes(),
        format!("{timestamp_millis}\n{secret}").as_bytes(),
    )
}

/// Feishu's signature: HMAC-SHA256 keyed by `timestamp\nsecret` over nothing, timestamp in
/// seconds.
fn feishu_sign(timestamp_secs: u128, secret: &str) -> String {
    hmac_sha256_base64(format!("{timestamp_secs}\n{secret}").as_bytes(), b"")
}

/// `### heading` and a list: the markdown DingTalk and WeCom both render.
fn markdown(message: &Message) -> String {
    let mut text = format!("### {}", message.heading);
    for line in &message.lines {
        text.push_str("\n- ");
        text.push_str(line);
    }
    text
}

fn dingtalk_body(message: &Message) -> Value {
    json!({
        "msgtype": "markdown",
        "markdown": { "title": t!("notify.title"), "text": markdown(message) },
        "at": {},
    })
}

fn wecom_body(message: &Message) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": markdown(message) } })
}

/// A rich-text (`post`) message: a title and one paragraph per line, under the language key
/// Feishu shows to readers of that language.
fn feishu_body(message: &Message, signature: Option<(u128, String)>) -> Value {
    let language = if i18n::current_language() == i18n::CHINESE {
        "zh_cn"
    } else {
        "en_us"
    };
    let paragraphs: Vec<Value> = message
        .lines
        .iter()
        .map(|line| json!([{ "tag": "text", "text": line }]))
        .collect();
    let mut post = serde_json::Map::new();
    post.insert(
        language.to_owned(),
        json!({ "title": message.heading, "content": paragraphs }),
    );
    let mut body = json!({ "msg_type": "post", "content": { "post": post } });
    if let Some((timestamp, sign)) = signature {
        body["timestamp"] = json!(timestamp.to_string());
        body["sign"] = json!(sign);
    }
    body
}

/// The event document, with the chat text added for receivers that forward it to people.
fn webhook_body(message: &Message) -> Value {
    let mut body = message.document.clone();
    body["message"] = json!(markdown(message));
    body
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

/// A warning for an entry that cannot be used; `None` so callers can `filter_map` past it.
fn unusable<T>(label: &str, detail: impl fmt::Display) -> Option<T> {
    alert!(
        "{}",
        t!(
            "notify.unusable",
            robot = label,
            detail = detail.to_string()
        )
    );
    None
}

fn missing(label: &str, key: &str) -> Option<Robot> {
    unusable(label, t!("notify.missing_key", key = key))
}

/// `url` from cfg.yaml, else `default`; the error never repeats the address, which may hold a
/// secret.
fn endpoint(label: &str, configured: Option<&str>, default: &str) -> Option<Url> {
    let text = configured.unwrap_or(default).trim();
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => unusable(label, t!("notify.bad_url")),
    }
}

fn dingtalk(index: usize, robot: &DingTalkRobot) -> Option<Robot> {
    let label = format!("dingtalk[{index}]");
    let token = robot.token.trim();
    if token.is_empty() {
        return missing(&label, "token");
    }
    let url = endpoint(&label, robot.url.as_deref(), DINGTALK_URL)?;
    Some(Robot {
        kind: RobotKind::DingTalk {
            url,
            token: token.to_owned(),
            secret: robot.secret.trim().to_owned(),
        },
        label,
    })
}

fn wecom(index: usize, robot: &WeComRobot) -> Option<Robot> {
    let label = format!("wecom[{index}]");
    let key = robot.key.trim();
    if key.is_empty() {
        return missing(&label, "key");
    }
    let mut url = endpoint(&label, robot.url.as_deref(), WECOM_URL)?;
    url.query_pairs_mut().append_pair("key", key);
    Some(Robot {
        kind: RobotKind::WeCom { url },
        label,
    })
}

fn feishu(index: usize, robot: &FeishuRobot) -> Option<Robot> {
    let label = format!("feishu[{index}]");
    let token = robot.token.trim();
    if token.is_empty() {
        return missing(&label, "token");
    }
    let mut url = endpoint(&label, robot.url.as_deref(), FEISHU_URL)?;
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments.pop_if_empty().push(token);
        }
        Err(()) => return unusable(&label, t!("notify.bad_url")),
    }
    Some(Robot {
        kind: RobotKind::Feishu {
            url,
            secret: robot.secret.as_deref().map(str::trim).map(str::to_owned),
        },
        label,
    })
}

fn webhook(index: usize, hook: &Webhook) -> Option<Robot> {
    let label = format!("webhook[{index}]");
    if hook.url.trim().is_empty() {
        return missing(&label, "url");
    }
    let url = endpoint(&label, Some(&hook.url), "")?;
    let mut headers = HeaderMap::new();
    for (name, value) in &hook.headers {
        // The value is left out of the warning: it is usually a token.
        let Ok(name_parsed) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            return unusable(&label, t!("notify.bad_header", name = name));
        };
        let Ok(mut value) = HeaderValue::from_str(value.trim()) else {
            return unusable(&label, t!("notify.bad_header", name = name));
        };
        value.set_sensitive(true);
        headers.insert(name_parsed, value);
    }
    Some(Robot {
        kind: RobotKind::Webhook { url, headers },
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{CHINESE, ENGLISH, LOCALE_LOCK};
    use std::sync::MutexGuard;

    fn in_locale(locale: &str) -> MutexGuard<'static, ()> {
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
    fn dingtalk_signature_is_hmac_of_timestamp_and_secret() {
        // Checked against `openssl dgst -sha256 -hmac SECRET -binary | base64`.
        let sign = dingtalk_sign(1_700_000_000_000, "SECexample0123456789");
        assert_eq!(sign, "figG6qqCA/lRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ=");
        let mut url = Url::parse(DINGTALK_URL).unwrap();
        url.query_pairs_mut().append_pair("sign", &sign);
        assert!(
            url.as_str()
                .ends_with("?sign=figG6qqCA%2FlRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ%3D"),
            "{url}"
        );
    }

    #[test]
    fn feishu_signature_keys_hmac_with_timestamp_and_secret() {
        // Python: base64(hmac.new(b"1700000000\nfeishu-secret", b"", sha256).digest()).
        assert_eq!(
            feishu_sign(1_700_000_000, "feishu-secret"),
            "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
        );
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

    fn sample_message() -> Message {
        Message {
            heading: "Heading".into(),
            lines: vec!["one".into(), "two".into()],
            document: json!({ "event": "job_finished" }),
        }
    }

    #[test]
    fn chat_bodies_follow_each_service_format() {
        let _guard = in_locale(ENGLISH);
        let message = sample_message();
        assert_eq!(
            dingtalk_body(&message),
            json!({
                "msgtype": "markdown",
                "markdown": { "title": "Image Transmit Notify", "text": "### Heading\n- one\n- two" },
                "at": {},
            })
        );
        assert_eq!(
            wecom_body(&message),
            json!({ "msgtype": "markdown", "markdown": { "content": "### Heading\n- one\n- two" } })
        );
        let post = json!({ "title": "Heading", "content": [
            [{ "tag": "text", "text": "one" }],
            [{ "tag": "text", "text": "two" }],
        ] });
        assert_eq!(
            feishu_body(&message, None),
            json!({ "msg_type": "post", "content": { "post": { "en_us": post } } })
        );
        let signed = feishu_body(&message, Some((1_700_000_000, "c2lnbg==".into())));
        assert_eq!(signed["timestamp"], "1700000000");
        assert_eq!(signed["sign"], "c2lnbg==");
        rust_i18n::set_locale(CHINESE);
        let chinese = feishu_body(&message, None);
        rust_i18n::set_locale(ENGLISH);
        assert_eq!(chinese["content"]["post"]["zh_cn"], post);
        assert_eq!(
            webhook_body(&message),
            json!({ "event": "job_finished", "message": "### Heading\n- one\n- two" })
        );
    }

    #[test]
    fn service_errors_in_a_200_answer_are_reported() {
        let _guard = in_locale(ENGLISH);
        assert_eq!(service_refusal(r#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert_eq!(service_refusal(r#"{"code":0,"msg":"success"}"#), None);
        assert_eq!(service_refusal("not json"), None);
        assert_eq!(
            service_refusal(r#"{"errcode":310000,"errmsg":"sign not match"}"#).as_deref(),
            Some("the service refused it with code 310000: sign not match")
        );
        assert_eq!(
            service_refusal(r#"{"code":19021,"msg":"sign match fail"}"#).as_deref(),
            Some("the service refused it with code 19021: sign match fail")
        );
    }

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), 201);
    }

    fn urls(notifier: &Notifier) -> Vec<(String, String)> {
        let inner = notifier.inner.as_ref().unwrap();
        inner
            .robots
            .iter()
            .map(|robot| {
                let url = match &robot.kind {
                    RobotKind::DingTalk { url, .. }
                    | RobotKind::WeCom { url }
                    | RobotKind::Feishu { url, .. }
                    | RobotKind::Webhook { url, .. } => url.to_string(),
                };
                (robot.label.clone(), url)
            })
            .collect()
    }

    #[test]
    fn robots_get_default_or_configured_endpoints() {
        let config = Config {
            dingtalk: vec![DingTalkRobot {
                token: "dt-token".into(),
                secret: "dt-secret".into(),
                url: None,
            }],
            wecom: vec![
                WeComRobot {
                    key: "wc-key".into(),
                    url: None,
                },
                WeComRobot {
                    key: "wc-key2".into(),
                    url: Some("http://127.0.0.1:9/wecom".into()),
                },
            ],
            feishu: vec![
                FeishuRobot {
                    token: "fs-token".into(),
                    secret: None,
                    url: None,
                },
                FeishuRobot {
                    token: "fs-token2".into(),
                    secret: Some("fs-secret".into()),
                    url: Some("http://127.0.0.1:9/hook/".into()),
                },
            ],
            webhook: vec![Webhook {
                url: "https://hooks.example/in/abc".into(),
                headers: [("Authorization".to_owned(), "Bearer xyz".to_owned())].into(),
            }],
            ..Config::default()
        };
        let notifier = Notifier::from_config(&config);
        assert!(!notifier.is_empty());
        assert_eq!(
            urls(&notifier),
            [
                ("dingtalk[0]", "https://oapi.dingtalk.com/robot/send"),
                (
                    "wecom[0]",
                    "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wc-key"
                ),
                ("wecom[1]", "http://127.0.0.1:9/wecom?key=wc-key2"),
                (
                    "feishu[0]",
                    "https://open.feishu.cn/open-apis/bot/v2/hook/fs-token"
                ),
                ("feishu[1]", "http://127.0.0.1:9/hook/fs-token2"),
                ("webhook[0]", "https://hooks.example/in/abc"),
            ]
            .map(|(label, url)| (label.to_owned(), url.to_owned()))
        );
        let debug = format!("{notifier:?}");
        for secret in ["dt-", "wc-", "fs-", "abc", "xyz"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn unusable_entries_are_left_out() {
        let _guard = in_locale(ENGLISH);
        let config = Config {
            dingtalk: vec![DingTalkRobot::default()],
            wecom: vec![WeComRobot {
                key: "k".into(),
                url: Some("ftp://host/x".into()),
            }],
            webhook: vec![Webhook {
                url: "http://127.0.0.1:9/".into(),
                headers: [("Bad Header".to_owned(), "v".to_owned())].into(),
            }],
            ..Config::default()
        };
        assert!(Notifier::from_config(&config).is_empty());
        assert!(Notifier::from_config(&Config::default()).is_empty());
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
