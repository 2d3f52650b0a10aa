//! A real headless Chromium for the web UI's tests, driven over the W3C WebDriver protocol by
//! Debian's `chromedriver`. The protocol is a handful of JSON requests, so this speaks it
//! directly rather than through a client library.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::registry::free_port;
use crate::tools::require_program;

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` with one headless Chromium session; both end when it is dropped.
pub struct Browser {
    driver: Option<Child>,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Browser {
    #[track_caller]
    pub fn start() -> Browser {
        require_program("chromedriver", "chromium-driver");
        require_program("chromium", "chromium");
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("testkit-chromium-")
            .tempdir()
            .unwrap();
        let mut browser = Browser {
            driver: Some(driver),
            port,
            session: String::new(),
            _profile: profile,
        };
        let started = Instant::now();
        while browser.request("GET", "/status", None).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = browser._profile.path().display().to_string();
        let created = browser
            .request(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        // The machine's network is closed: without these Chromium keeps
                        // trying to reach its own services.
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--window-size=1400,1000", "--lang=en-US",
                            format!("--user-data-dir={profile}"),
                        ],
                    },
                }}})),
            )
            .unwrap_or_else(|error| panic!("cannot start a Chromium session: {error}"));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {created}"))
            .to_string();
        browser
    }

    /// One WebDriver call; its `value`, or the error it reported.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request says: read the header,
        // then as many bytes as it announces.
        let mut reply = Vec::new();
        let mut buffer = [0u8; 8192];
        let split = loop {
            if let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
                break split;
            }
            let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the connection closed before the header ended".into());
            }
            reply.extend_from_slice(&buffer[..read]);
        };
        let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
        let mut content = reply[split + 4..].to_vec();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok());
        match length {
            Some(length) => {
                while content.len() < length {
                    let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
                    if read == 0 {
                        break;
                    }
                    content.extend_from_slice(&buffer[..read]);
                }
            }
            None => {
                stream
                    .read_to_end(&mut content)
                    .map_err(|e| e.to_string())?;
                if head.contains("transfer-encoding: chunked") {
                    content = dechunk(&content);
                }
            }
        }
        let value: Value = serde_json::from_slice(&content).map_err(|e| e.to_string())?;
        if value["value"]["error"].is_string() {
            return Err(value["value"].to_string());
        }
        Ok(value["value"].clone())
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.request(method, &path, body)
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"))
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` in the page with `args` (`arguments[0]`…); what it returns.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn element(&self, selector: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        self.request(
            "POST",
            &path,
            Some(json!({"using": "css selector", "value": selector})),
        )
        .ok()
        .and_then(|found| found[ELEMENT].as_str().map(str::to_string))
    }

    /// Clicks the element `selector` finds, as a user would.
    #[track_caller]
    pub fn click(&self, selector: &str) {
        let element = self
            .element(selector)
            .unwrap_or_else(|| panic!("nothing matches {selector}"));
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Types `text` into the field `selector` finds, after clearing it.
    #[track_caller]
    pub fn type_into(&self, selector: &str, text: &str) {
        let element = self
            .element(selector)
            .unwrap_or_else(|| panic!("nothing matches {selector}"));
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Picks `files` in the file input `selector` finds, as a file dialog would.
    #[track_caller]
    pub fn choose_files(&self, selector: &str, files: &[&Path]) {
        let element = self
            .element(selector)
            .unwrap_or_else(|| panic!("nothing matches {selector}"));
        let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": paths.join("\n") })),
        );
    }

    /// Chooses `value` in the `<select>` `selector` finds, firing `change` as a user's choice does.
    #[track_caller]
    pub fn choose(&self, selector: &str, value: &str) {
        let chosen = self.run(
            "const s = document.querySelector(arguments[0]); \
             if (![...s.options].some(o => o.value === arguments[1])) return false; \
             s.value = arguments[1]; s.dispatchEvent(new Event('change')); return true;",
            json!([selector, value]),
        );
        assert_eq!(chosen, json!(true), "{selector} has no option {value}");
    }

    /// The visible text of what `selector` finds; empty when nothing does.
    pub fn text(&self, selector: &str) -> String {
        self.run(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([selector]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until `selector`'s text satisfies `ready`; fails with what the page shows.
    #[track_caller]
    pub fn wait_for_text(&self, selector: &str, limit: Duration, ready: impl Fn(&str) -> bool) {
        let started = Instant::now();
        loop {
            let text = self.text(selector);
            if ready(&text) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{selector} did not show what was awaited within {limit:?}; it shows {text:?}; \
                 the job's log shows {:?}; the notice {:?}",
                self.run(
                    "const e = document.getElementById('job-log'); return e ? e.textContent : '';",
                    json!([])
                ),
                self.text("[data-testid=notice]")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes the window `width` × `height` pixels, as a person resizing it would.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// A PNG of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.call("GET", "/screenshot", None);
        let bytes = BASE64
            .decode(encoded.as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::write(path, bytes).unwrap();
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&body[start..(start + size).min(body.len())]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }
}
