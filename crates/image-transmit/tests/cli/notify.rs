//! Notifications at the end of a job: DingTalk (signed), WeCom, Feishu (signed) and the generic
//! webhook, each checked as its service would read it, by a small HTTP receiver the test starts;
//! and receivers that fail or never answer, which must not change the job's outcome.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde_json::Value;
use sha2::Sha256;
use testkit::{Layer, PushedImage, TestRegistry, push_oci_image};

use crate::bundle_support::{announced_meta, assert_success, output_text, save_output};
use crate::common::{copy_between, image_transmit, stderr_of, stdout_of, workdir, write};

const DINGTALK_TOKEN: &str = "dt-token-7f3a";
const DINGTALK_SECRET: &str = "SECdt-secret-91c2";
const WECOM_KEY: &str = "wc-key-5d1e";
const FEISHU_TOKEN: &str = "fs-token-b604";
const FEISHU_SECRET: &str = "fs-secret-2e8f";
const WEBHOOK_AUTH: &str = "Bearer wh-token-c3d9";

/// Everything a credential of the tests could leak as; none may appear in the output.
const CREDENTIALS: [&str; 6] = [
    DINGTALK_TOKEN,
    DINGTALK_SECRET,
    WECOM_KEY,
    FEISHU_TOKEN,
    FEISHU_SECRET,
    "wh-token-c3d9",
];

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    fn path(&self) -> String {
        self.url().path().to_owned()
    }

    fn query(&self, name: &str) -> Option<String> {
        self.url()
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    fn url(&self) -> Url {
        Url::parse(&format!("http://receiver{}", self.target)).unwrap()
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers with this status and a chat-service style `{"errcode":0}` body.
    Answer(u16),
    /// Reads the request and then never answers, keeping the connection open.
    Hang,
}

/// A tiny HTTP/1.1 server on a free loopback port, recording every request.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, behaviour, &log));
            }
        });
        Receiver { port, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The one request whose path starts with `prefix`.
    #[track_caller]
    fn only(&self, prefix: &str) -> Received {
        let matching: Vec<_> = self
            .received()
            .into_iter()
            .filter(|request| request.target.starts_with(prefix))
            .collect();
        assert_eq!(matching.len(), 1, "{prefix}: {matching:#?}");
        matching.into_iter().next().unwrap()
    }
}

/// Serves every request on one connection until the client closes it.
fn serve(stream: TcpStream, behaviour: Behaviour, log: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |value| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        log.lock().unwrap().push(Received {
            target,
            headers,
            body,
            at: Instant::now(),
        });
        match behaviour {
            Behaviour::Answer(status) => {
                let body = r#"{"errcode":0,"errmsg":"ok"}"#;
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Behaviour::Hang => {
                // Holds the connection until the client gives up and closes it.
                let _ = reader.read_to_end(&mut Vec::new());
                return;
            }
        }
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    BASE64.encode(mac.finalize().into_bytes())
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// cfg.yaml with one robot of each kind, all pointed at `receiver`.
fn every_robot(receiver: &Receiver) -> String {
    format!(
        "dingtalk:\n- token: {DINGTALK_TOKEN}\n  secret: {DINGTALK_SECRET}\n  url: {}\n\
         wecom:\n- key: {WECOM_KEY}\n  url: {}\n\
         feishu:\n- token: {FEISHU_TOKEN}\n  secret: {FEISHU_SECRET}\n  url: {}\n\
         webhook:\n- url: {}\n  headers:\n    Authorization: {WEBHOOK_AUTH}\n",
        receiver.url("/robot/send"),
        receiver.url("/cgi-bin/webhook/send"),
        receiver.url("/open-apis/bot/v2/hook"),
        receiver.url("/events?from=image-transmit"),
    )
}

fn source_with_image() -> (TestRegistry, PushedImage) {
    let source = TestRegistry::start();
    let image = push_oci_image(
        &source,
        "team/app",
        "1.0",
        &[Layer::random(1, 200_000), Layer::random(2, 30_000)],
    );
    (source, image)
}

#[track_caller]
fn assert_no_credentials(text: &str) {
    for credential in CREDENTIALS {
        assert!(!text.contains(credential), "{credential} leaked:\n{text}");
    }
}

/// Checks DingTalk's signature as DingTalk does: HMAC-SHA256 keyed by the secret over
/// `timestamp\nsecret`, base64, with a timestamp near the present.
#[track_caller]
fn assert_dingtalk_signed(request: &Received) {
    assert_eq!(
        request.query("access_token").as_deref(),
        Some(DINGTALK_TOKEN)
    );
    let timestamp = request.query("timestamp").unwrap();
    let millis: u128 = timestamp.parse().unwrap();
    assert!(now_millis().abs_diff(millis) < 120_000, "{timestamp}");
    let expected = hmac_base64(
        DINGTALK_SECRET.as_bytes(),
        format!("{timestamp}\n{DINGTALK_SECRET}").as_bytes(),
    );
    assert_eq!(request.query("sign"), Some(expected));
    // The query is percent-encoded: base64's `+`, `/` and `=` never appear raw.
    let raw_sign = request.target.split("sign=").nth(1).unwrap();
    assert!(!raw_sign.contains(['+', '/', '=']), "{}", request.target);
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
}

/// Checks Feishu's signature: HMAC-SHA256 keyed by `timestamp\nsecret` over nothing, with the
/// timestamp in seconds, both in the body.
#[track_caller]
fn assert_feishu_signed(body: &Value) {
    let timestamp = body["timestamp"].as_str().unwrap();
    let seconds: u128 = timestamp.parse().unwrap();
    assert!((now_millis() / 1000).abs_diff(seconds) < 120, "{timestamp}");
    let expected = hmac_base64(format!("{timestamp}\n{FEISHU_SECRET}").as_bytes(), b"");
    assert_eq!(body["sign"].as_str(), Some(expected.as_str()));
}

#[test]
fn every_robot_hears_the_end_of_a_copy() {
    let (source, image) = source_with_image();
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = workdir();
    write(dir.path(), "cfg.yaml", &every_robot(&receiver));

    let output = copy_between(dir.path(), &source, &target)
        .arg("team/app:1.0")
        .output()
        .unwrap();
    assert_success(&output);
    let text = output_text(&output);
    assert!(!text.contains("Warning"), "{text}");
    assert_no_credentials(&text);
    assert_eq!(receiver.received().len(), 4, "{:#?}", receiver.received());

    let job_line = format!("- Job: copy {} -> {}", source.host(), target.host());

    let dingtalk = receiver.only("/robot/send?");
    assert_dingtalk_signed(&dingtalk);
    let body = dingtalk.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], "Image Transmit Notify");
    let markdown = body["markdown"]["text"].as_str().unwrap();
    assert!(
        markdown.starts_with("### Transmit Task End\n"),
        "{markdown}"
    );
    assert!(markdown.contains(&job_line), "{markdown}");
    assert!(
        markdown.contains("- Stat: Invalid:0 All:1 OK:1 Err:0 Doing:0 "),
        "{markdown}"
    );

    let wecom = receiver.only("/cgi-bin/webhook/send?");
    assert_eq!(wecom.query("key").as_deref(), Some(WECOM_KEY));
    let body = wecom.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["content"].as_str(), Some(markdown));

    let feishu = receiver.only("/open-apis/bot/v2/hook/");
    assert_eq!(
        feishu.path(),
        format!("/open-apis/bot/v2/hook/{FEISHU_TOKEN}")
    );
    let body = feishu.json();
    assert_feishu_signed(&body);
    assert_eq!(body["msg_type"], "post");
    let post = &body["content"]["post"]["en_us"];
    assert_eq!(post["title"], "Transmit Task End");
    assert_eq!(
        post["content"][0][0]["text"].as_str(),
        job_line.strip_prefix("- ")
    );
    assert_eq!(post["content"][0][0]["tag"], "text");

    let webhook = receiver.only("/events?");
    assert_eq!(webhook.query("from").as_deref(), Some("image-transmit"));
    assert_eq!(
        webhook.headers.get("authorization").map(String::as_str),
        Some(WEBHOOK_AUTH)
    );
    let body = webhook.json();
    assert_eq!(body["event"], "job_finished");
    assert_eq!(body["command"], "copy");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["source"], source.host());
    assert_eq!(body["target"], target.host());
    assert_eq!(body["summary"]["succeeded"], 1);
    assert_eq!(body["summary"]["failed"], 0);
    assert_eq!(body["images"][0]["status"], "copied");
    assert_eq!(
        body["images"][0]["digest"].as_str(),
        Some(image.digest.as_str())
    );
    assert!(
        body["bytes_transferred"].as_u64().unwrap() > 230_000,
        "{body}"
    );
    assert!(body["elapsed_seconds"].as_f64().unwrap() > 0.0, "{body}");
    assert_eq!(body["message"].as_str(), Some(markdown));
}

#[test]
fn a_chinese_locale_gets_chinese_notifications() {
    let (source, _) = source_with_image();
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = workdir();
    write(dir.path(), "cfg.yaml", &every_robot(&receiver));

    let output = copy_between(dir.path(), &source, &target)
        .env("LANG", "zh_CN.UTF-8")
        .arg("team/app:1.0")
        .output()
        .unwrap();
    assert_success(&output);

    let body = receiver.only("/robot/send?").json();
    assert_eq!(body["markdown"]["title"], "镜像传输结果通知");
    let markdown = body["markdown"]["text"].as_str().unwrap();
    assert!(
        markdown.starts_with("### 传输任务结束\n- 任务：copy "),
        "{markdown}"
    );
    assert!(
        markdown.contains("- 统计：无效:0 总计:1 成功:1 失败:0"),
        "{markdown}"
    );
    let feishu = receiver.only("/open-apis/bot/v2/hook/").json();
    assert_eq!(feishu["content"]["post"]["zh_cn"]["title"], "传输任务结束");
    assert_eq!(
        receiver.only("/cgi-bin/webhook/send?").json()["markdown"]["content"].as_str(),
        Some(markdown)
    );
}

/// One receiver answers 500, two never answer; a working one shows the job's missing image.
/// The job's outcome and exit status are what they would be without notifications, and the
/// silent receivers, waited for side by side, cost no more than one send timeout.
#[test]
fn failing_or_silent_receivers_change_nothing() {
    let (source, _) = source_with_image();
    let target = TestRegistry::start();
    let broken = Receiver::start(Behaviour::Answer(500));
    let silent = Receiver::start(Behaviour::Hang);
    let also_silent = Receiver::start(Behaviour::Hang);
    let working = Receiver::start(Behaviour::Answer(200));
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "dingtalk:\n- token: {DINGTALK_TOKEN}\n  secret: {DINGTALK_SECRET}\n  url: {}\n\
             webhook:\n- url: {}\n  headers:\n    Authorization: {WEBHOOK_AUTH}\n\
             - url: {}\n\
             - url: {}\n",
            broken.url("/robot/send"),
            silent.url("/hook"),
            working.url("/hook"),
            also_silent.url("/hook"),
        ),
    );

    let output = copy_between(dir.path(), &source, &target)
        .args(["team/app:1.0", "team/missing:1.0"])
        .output()
        .unwrap();
    let finished = Instant::now();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        stdout_of(&output).contains("2 images: 1 succeeded, 0 failed, 1 invalid"),
        "{text}"
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Warning: notification to dingtalk[0] failed: it answered HTTP 500"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Warning: notification to webhook[0] failed: no answer within 2 s"),
        "{stderr}"
    );
    assert_no_credentials(&text);
    assert!(
        !text.contains("/hook"),
        "addresses stay out of warnings: {text}"
    );

    assert!(
        stderr.contains("Warning: notification to webhook[2] failed: no answer within 2 s"),
        "{stderr}"
    );
    let first = silent.only("/hook").at;
    let second = also_silent.only("/hook").at;
    let gap = first.max(second).duration_since(first.min(second));
    assert!(
        gap < Duration::from_secs(1),
        "sent one after the other: {gap:?}"
    );
    let waited = finished.duration_since(first.min(second));
    assert!(
        waited < Duration::from_secs(5),
        "waited {waited:?} for two silent receivers"
    );
    assert_eq!(broken.received().len(), 1);

    let body = working.only("/hook").json();
    assert_eq!(body["status"], "failed");
    assert_eq!(body["summary"]["invalid"], 1);
    assert_eq!(body["invalid"][0]["line"], "team/missing:1.0");
    assert!(
        body["invalid"][0]["error"]
            .as_str()
            .unwrap()
            .contains("team/missing:1.0 not found"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("- Invalid: team/missing:1.0: "),
        "{body}"
    );
}

/// Save and upload end with a notification too, naming their command, source and target.
#[test]
fn save_and_upload_notify_at_their_end() {
    let (source, _) = source_with_image();
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = with_webhook(&receiver);

    let saved = save_output(dir.path(), &source.url(), &["team/app:1.0"]);
    assert_success(&saved);
    let meta = announced_meta(dir.path(), &saved);
    let upload = image_transmit(dir.path())
        .args(["upload", "--to", &target.url()])
        .arg(&meta)
        .output()
        .unwrap();
    assert_success(&upload);

    let events: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    let bundle_name = Path::new(&meta)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches("_meta.yaml")
        .to_owned();
    assert_eq!(events[0]["command"], "save");
    assert_eq!(events[0]["source"], source.host());
    assert_eq!(events[0]["target"], bundle_name);
    assert_eq!(events[0]["status"], "succeeded");
    assert_eq!(events[1]["command"], "upload");
    assert_eq!(events[1]["target"], target.host());
    assert_eq!(events[1]["status"], "succeeded");
    assert_eq!(events[1]["images"][0]["status"], "copied");
}

/// A misspelt key and an entry that cannot work are named on stderr and nothing is sent.
#[test]
fn misspelt_and_incomplete_robots_are_warned_about() {
    let (source, _) = source_with_image();
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "wecom:\n- kee: {WECOM_KEY}\n  url: {}\nfeishu:\n- token: {FEISHU_TOKEN}\n  url: ftp://nowhere\n",
            receiver.url("/wecom")
        ),
    );
    let output = copy_between(dir.path(), &source, &target)
        .arg("team/app:1.0")
        .output()
        .unwrap();
    assert_success(&output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("unknown key in cfg.yaml: wecom[0].kee"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("Warning: wecom[0] in cfg.yaml is left out of notifications: it has no key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Warning: feishu[0] in cfg.yaml is left out of notifications: its url is not an http:// or https:// address"),
        "{stderr}"
    );
    assert_no_credentials(&output_text(&output));
    assert!(receiver.received().is_empty());
}

/// In watch mode every image is told about as it finishes, then the cycle's job.
#[test]
fn watch_tells_of_each_image_then_of_the_cycle() {
    let (source, image) = source_with_image();
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = with_webhook(&receiver);
    write(dir.path(), "watch.lst", "team/app\n");
    let output = image_transmit(dir.path())
        .args([
            "watch",
            "--once",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
        ])
        .args(["--list", "watch.lst"])
        .output()
        .unwrap();
    assert_success(&output);

    let events: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event"], "image_finished");
    assert_eq!(events[0]["command"], "watch");
    assert_eq!(events[0]["image"]["status"], "copied");
    assert_eq!(events[0]["image"]["digest"], image.digest.as_str());
    assert!(
        events[0]["image"]["size"].as_u64().unwrap() > 0,
        "{events:#?}"
    );
    assert_eq!(events[1]["command"], "watch");
    assert_eq!(events[1]["status"], "succeeded");
}

/// An image is told about when it finishes, not when the cycle does: a small image copied
/// beside a slow one is announced while the slow one is still on its way.
#[test]
fn watch_tells_of_an_image_while_others_are_still_moving() {
    let (source, proxy, _slow) = crate::common::trickling_source(79_001);
    let quick = push_oci_image(&source, "team/quick", "1", &[Layer::random(79_002, 2_000)]);
    let target = TestRegistry::start();
    let receiver = Receiver::start(Behaviour::Answer(200));
    let dir = with_webhook(&receiver);
    write(dir.path(), "watch.lst", "team/big\nteam/quick\n");
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("image-transmit"))
        .current_dir(dir.path())
        .env("LANG", "en_US.UTF-8")
        .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
        .args([
            "watch",
            "--once",
            "--from",
            &proxy.url(),
            "--to",
            &target.url(),
        ])
        .args(["--list", "watch.lst"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let first: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    // The slow image is not on the target yet when the quick one is announced.
    let slow_arrived = crate::common::served_digest(&target, "team/big", "1").is_some();
    let status = watch.wait().unwrap();
    assert!(status.success());
    assert!(!first.is_empty(), "no notice within 30 s");
    assert_eq!(first[0]["event"], "image_finished", "{first:#?}");
    assert_eq!(first[0]["image"]["digest"], quick.digest.as_str());
    assert!(
        !slow_arrived,
        "the quick image was announced only after the slow one arrived"
    );
    let events: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["image_finished", "image_finished", "job_finished"]);
}

/// A working folder whose cfg.yaml sends every notification to `receiver`'s `/hook`.
fn with_webhook(receiver: &Receiver) -> tempfile::TempDir {
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!("webhook:\n- url: {}\n", receiver.url("/hook")),
    );
    dir
}
