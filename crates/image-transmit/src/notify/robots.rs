//! The robots: one per cfg.yaml entry (`dingtalk:`, `wecom:`, `feishu:`, `webhook:`), each
//! with its service's endpoint, message body, signature and way of saying no. Separate from
//! `notify` itself, which decides what to say and when, because all of this is the services'
//! formats, and a new service is a change here only.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rust_i18n::t;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Message, SEND_TIMEOUT, error_chain};
use crate::config::{DingTalkRobot, FeishuRobot, WeComRobot, Webhook};
use crate::i18n;
use crate::printer::alert;

const DINGTALK_URL: &str = "https://oapi.dingtalk.com/robot/send";
const WECOM_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
const FEISHU_URL: &str = "https://open.feishu.cn/open-apis/bot/v2/hook";

/// One destination, with the name it is reported under.
pub(super) struct Robot {
    /// `dingtalk[0]`, `webhook[2]`: the entry's place in cfg.yaml.
    pub(super) label: String,
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

impl Robot {
    /// Posts `message` in this robot's format; the error is a sentence for the warning line.
    pub(super) async fn send(
        &self,
        client: &reqwest::Client,
        message: &Message,
    ) -> Result<(), String> {
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
pub(super) fn markdown(message: &Message) -> String {
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

pub(super) fn dingtalk(index: usize, robot: &DingTalkRobot) -> Option<Robot> {
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

pub(super) fn wecom(index: usize, robot: &WeComRobot) -> Option<Robot> {
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

pub(super) fn feishu(index: usize, robot: &FeishuRobot) -> Option<Robot> {
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

pub(super) fn webhook(index: usize, hook: &Webhook) -> Option<Robot> {
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
    use crate::config::Config;
    use crate::i18n::{CHINESE, ENGLISH};
    use crate::notify::Notifier;
    use crate::notify::tests::in_locale;

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
}
