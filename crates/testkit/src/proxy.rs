//! A fault-injecting HTTP/1.1 reverse proxy to put in front of a real [`TestRegistry`].
//!
//! The project allows a server of its own for fault injection but never instead of the
//! real registry. This proxy is that compromise: every request reaches the real `docker-registry`
//! unless a [`Rule`] says otherwise, so the protocol stays real, and tests can still make one
//! request fail with 500, 503 or 429, corrupt or cut a body, slow it down, refuse an upload style
//! or serve a manifest no current registry would store (Docker schema 1).
//!
//! It is deliberately simple, since tests are its only clients: plain HTTP, std threads, one
//! request per connection (every answer says `Connection: close`, so clients never reuse a
//! connection whose state a fault may have broken). Bodies with a Content-Length stream through
//! in both directions, so an upload the client aborts reaches the registry aborted, and slow or
//! cut downloads behave as on a real network; chunked bodies are rare here (the product always
//! sends a length) and are passed on whole. Every request is logged with its status so tests
//! can assert that a retry happened, when it happened, or that some request never came.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::TestRegistry;

/// Long enough for a large blob on a loaded machine, short enough that a wedged peer ends the
/// connection's thread instead of leaking it for the rest of the test run.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Request heads are a few hundred bytes; anything this large is a bug in a test.
const MAX_HEAD: usize = 64 * 1024;

/// Body bytes copied per write when no fault asks for a different size.
const COPY_CHUNK: usize = 64 * 1024;

/// Headers that describe one hop, not the message: the proxy sets its own.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "content-length",
];

/// What a matching [`Rule`] does to a request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers with this status, headers and body; the registry never sees the request.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Forwards, then flips every bit of the body's middle byte: same length, wrong digest.
    CorruptBody,
    /// Forwards, announces the full length, sends only the first `after` body bytes and closes.
    CutBody { after: u64 },
    /// Forwards, sending the body `chunk` bytes at a time with `pause` after each.
    SlowBody { chunk: usize, pause: Duration },
    /// Answers with this status and a body that never ends (no length, bytes until the client
    /// hangs up), as a hostile or broken registry might: the client must stop reading.
    EndlessBody { status: u16 },
    /// Reads the first `after` bytes of the request body, then neither reads more nor answers,
    /// holding the connection until the client gives up: a destination that stalls.
    StopReading { after: u64 },
    /// Forwards, sends the first `after` body bytes, then neither sends more nor closes until
    /// the client gives up: a source whose connection stalls midway.
    HangBody { after: u64 },
    /// Forwards without the request's `Range` header, as a registry (or a proxy in front of
    /// one) that does not serve parts of a blob: the whole blob comes again.
    IgnoreRange,
    /// Forwards, and adds this header to the registry's answer: what another registry would
    /// say (`OCI-Chunk-Min-Length`, say) around the CNCF registry's real behaviour.
    AddHeader { name: String, value: String },
    /// Takes the first `after` bytes of a longer request body and closes the connection. With
    /// `reaches_registry`, those bytes go on to the registry, which then sees its request break
    /// (a firewall or a tunnel cutting the connection); without, the registry never sees the
    /// request (a proxy that takes whole requests before it forwards them, as nginx does).
    CutRequestBody { after: u64, reaches_registry: bool },
}

/// A fault for requests whose method and path match, optionally only the first few of them.
#[derive(Clone, Debug)]
pub struct Rule {
    method: String,
    path_contains: Vec<String>,
    only_with_body: bool,
    /// Applies only to requests whose body is longer than this.
    body_over: Option<u64>,
    /// Matching requests still to let through before the rule applies.
    skip: usize,
    times: Option<usize>,
    fault: Fault,
}

impl Rule {
    /// A rule for `method` requests whose path (with query) contains `path_contains`, applied
    /// to every match until [`times`](Self::times) limits it.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method: method.to_ascii_uppercase(),
            path_contains: vec![path_contains.to_owned()],
            only_with_body: false,
            body_over: None,
            skip: 0,
            times: None,
            fault,
        }
    }

    /// Answers `status` with a registry-style JSON error body instead of forwarding.
    pub fn status(method: &str, path_contains: &str, status: u16) -> Rule {
        Rule::new(
            method,
            path_contains,
            Fault::Respond {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: error_body("UNKNOWN", &format!("injected HTTP {status}")),
            },
        )
    }

    /// Answers 429 with `Retry-After: seconds`, as a rate-limiting registry does.
    pub fn too_many_requests(method: &str, path_contains: &str, seconds: u64) -> Rule {
        Rule::new(
            method,
            path_contains,
            Fault::Respond {
                status: 429,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("Retry-After".into(), seconds.to_string()),
                ],
                body: error_body("TOOMANYREQUESTS", "injected rate limit"),
            },
        )
    }

    /// Serves `body` as `content_type` with status 200 and its `Docker-Content-Digest`, as a
    /// registry serves a manifest, without asking the registry.
    pub fn serve(method: &str, path_contains: &str, content_type: &str, body: &[u8]) -> Rule {
        Rule::new(
            method,
            path_contains,
            Fault::Respond {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), content_type.to_owned()),
                    ("Docker-Content-Digest".into(), crate::sha256_digest(body)),
                ],
                body: body.to_vec(),
            },
        )
    }

    /// Answers `status` with a body that never ends; see [`Fault::EndlessBody`].
    pub fn endless_body(method: &str, path_contains: &str, status: u16) -> Rule {
        Rule::new(method, path_contains, Fault::EndlessBody { status })
    }

    /// Takes `after` request body bytes, then goes silent; see [`Fault::StopReading`].
    pub fn stop_reading(method: &str, path_contains: &str, after: u64) -> Rule {
        Rule::new(method, path_contains, Fault::StopReading { after })
    }

    /// Forwards and corrupts the response body; see [`Fault::CorruptBody`].
    pub fn corrupt_body(method: &str, path_contains: &str) -> Rule {
        Rule::new(method, path_contains, Fault::CorruptBody)
    }

    /// Forwards and closes the connection after `after` body bytes; see [`Fault::CutBody`].
    pub fn cut_body(method: &str, path_contains: &str, after: u64) -> Rule {
        Rule::new(method, path_contains, Fault::CutBody { after })
    }

    /// Forwards and stalls the response body after `after` bytes; see [`Fault::HangBody`].
    pub fn hang_body(method: &str, path_contains: &str, after: u64) -> Rule {
        Rule::new(method, path_contains, Fault::HangBody { after })
    }

    /// Forwards without `Range`; see [`Fault::IgnoreRange`].
    pub fn ignore_range(method: &str, path_contains: &str) -> Rule {
        Rule::new(method, path_contains, Fault::IgnoreRange)
    }

    /// Forwards and adds `name: value` to the answer; see [`Fault::AddHeader`].
    pub fn add_header(method: &str, path_contains: &str, name: &str, value: &str) -> Rule {
        Rule::new(
            method,
            path_contains,
            Fault::AddHeader {
                name: name.to_owned(),
                value: value.to_owned(),
            },
        )
    }

    /// Breaks request bodies longer than `after`; see [`Fault::CutRequestBody`].
    pub fn cut_request_body(
        method: &str,
        path_contains: &str,
        after: u64,
        reaches_registry: bool,
    ) -> Rule {
        Rule::new(
            method,
            path_contains,
            Fault::CutRequestBody {
                after,
                reaches_registry,
            },
        )
    }

    /// Forwards and trickles the response body; see [`Fault::SlowBody`].
    pub fn slow_body(method: &str, path_contains: &str, chunk: usize, pause: Duration) -> Rule {
        Rule::new(method, path_contains, Fault::SlowBody { chunk, pause })
    }

    /// Answers 405 to a single-request blob upload (`PUT …/blobs/uploads/…?digest=` carrying the
    /// content), as registries that only take chunked uploads do. The `PUT` that closes a
    /// chunked upload has an empty body and goes through.
    pub fn refuse_monolithic_upload() -> Rule {
        Rule::new(
            "PUT",
            "/blobs/uploads/",
            Fault::Respond {
                status: 405,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: error_body("UNSUPPORTED", "single-request uploads are refused"),
            },
        )
        .and_path_contains("digest=")
        .only_with_body()
    }

    /// Also requires the path (with query) to contain `text`.
    pub fn and_path_contains(mut self, text: &str) -> Rule {
        self.path_contains.push(text.to_owned());
        self
    }

    /// Applies only to requests that carry a non-empty body.
    pub fn only_with_body(mut self) -> Rule {
        self.only_with_body = true;
        self
    }

    /// Applies only to requests whose body is longer than `bytes`, as a proxy that caps request
    /// bodies (nginx's `client_max_body_size`) refuses only those.
    pub fn body_over(mut self, bytes: u64) -> Rule {
        self.body_over = Some(bytes);
        self
    }

    /// Lets the first `n` matching requests through untouched; the rule applies from the next.
    pub fn after(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }

    /// Applies to the first `n` matching requests only; later ones go through untouched.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str, body_len: u64) -> bool {
        self.times != Some(0)
            && self.method == method
            && self.path_contains.iter().all(|text| path.contains(text))
            && (!self.only_with_body || body_len > 0)
            && self.body_over.is_none_or(|limit| body_len > limit)
            && match self.fault {
                Fault::CutRequestBody { after, .. } => body_len > after,
                _ => true,
            }
    }
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// The request target: path and query, e.g. `/v2/a/blobs/uploads/x?_state=…&digest=…`.
    pub path: String,
    /// The status the client was sent (502 if the registry could not be reached); `None` while
    /// the request is in flight, and for good if the client gave up before an answer (an
    /// aborted upload, say).
    pub status: Option<u16>,
    /// Whether a rule changed this request or its answer.
    pub faulted: bool,
    /// When the request's head arrived.
    pub at: Instant,
    /// Length of the request body, as announced.
    pub body_len: u64,
    /// Whether the request carried an `Authorization` header (its value is not kept).
    pub authorized: bool,
    /// The request's `Range` header (a download asking for part of a blob) or its
    /// `Content-Range` (a chunk of an upload), as sent.
    pub range: Option<String>,
}

/// A running proxy in front of one registry. Dropping it stops it and closes its connections.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    /// `http://127.0.0.1:PORT` of the proxy, for rewriting `Location` headers.
    public_url: String,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<SeenRequest>>,
    logged: Condvar,
    stopping: AtomicBool,
    /// Open client connections, so that dropping the proxy ends slow responses at once.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`, which must speak plain
    /// HTTP.
    #[track_caller]
    pub fn start(upstream: &TestRegistry) -> FaultProxy {
        assert!(
            upstream.ca_pem().is_none(),
            "FaultProxy forwards plain HTTP only; {} uses TLS",
            upstream.url()
        );
        FaultProxy::start_for(&upstream.host())
    }

    /// Starts a proxy forwarding to the plain-HTTP server at `upstream` (`host:port`).
    #[track_caller]
    pub fn start_for(upstream: &str) -> FaultProxy {
        // Binding port 0 keeps the port: no race with other tests, unlike `free_port`.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            public_url: format!("http://{address}"),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            logged: Condvar::new(),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .unwrap()
        };
        FaultProxy {
            address,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.public_url.clone()
    }

    /// Adds a rule. Rules are tried in the order added; the first that matches applies.
    pub fn add(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Drops every rule: the registry is healthy again.
    pub fn clear_rules(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request so far, in the order their heads arrived.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.log).clone()
    }

    /// Waits until a request matching `predicate` is in the log (it is logged when its head
    /// arrives, and again when its answer starts) and returns it, or `None` after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&SeenRequest) -> bool,
    ) -> Option<SeenRequest> {
        let deadline = Instant::now() + timeout;
        let mut log = lock(&self.shared.log);
        loop {
            if let Some(found) = log.iter().find(|seen| predicate(seen)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            log = self
                .shared
                .logged
                .wait_timeout(log, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor blocked in accept(); it sees `stopping` and returns.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, connection) in lock(&self.shared.connections).drain() {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "errors": [{ "code": code, "message": message, "detail": null }]
    }))
    .unwrap()
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).insert(id, clone);
        }
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                // Errors mean the client or the registry went away; the client sees a broken
                // connection, which is all a proxy can tell it.
                let _ = serve_connection(stream, &shared);
                lock(&shared.connections).remove(&id);
            });
        if spawned.is_err() {
            return;
        }
    }
}

/// A request whose head has been read.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
}

enum RequestBody {
    /// Neither Content-Length nor chunked: no body.
    None,
    /// A chunked body, already read and decoded.
    Whole(Vec<u8>),
    /// This many bytes still to read from the client.
    Length(u64),
}

impl RequestBody {
    fn len(&self) -> u64 {
        match self {
            RequestBody::None => 0,
            RequestBody::Whole(bytes) => bytes.len() as u64,
            RequestBody::Length(length) => *length,
        }
    }
}

/// Keeps a connection open, reading nothing, until the client closes it (or, as a guard for a
/// broken test, ten minutes pass).
fn hold_until_hung_up(client: &TcpStream) {
    if client.set_nonblocking(true).is_err() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(600) {
        match client.peek(&mut [0u8; 1]) {
            // Closed by the client.
            Ok(0) => return,
            Err(error) if error.kind() != io::ErrorKind::WouldBlock => return,
            // Unread bytes waiting, or nothing yet: the client is still there.
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn serve_connection(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let at = Instant::now();
    let Some(mut request) = read_request(&mut reader, &mut client)? else {
        return Ok(());
    };

    let fault = {
        let mut rules = lock(&shared.rules);
        rules
            .iter_mut()
            .find(|rule| rule.matches(&request.method, &request.path, request.body.len()))
            .and_then(|rule| {
                if rule.skip > 0 {
                    rule.skip -= 1;
                    return None;
                }
                if let Some(left) = rule.times.as_mut() {
                    *left -= 1;
                }
                Some(rule.fault.clone())
            })
    };
    let entry = record(
        shared,
        SeenRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            status: None,
            faulted: fault.is_some(),
            at,
            body_len: request.body.len(),
            authorized: request
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization")),
            range: request
                .headers
                .iter()
                .find(|(name, _)| {
                    name.eq_ignore_ascii_case("range") || name.eq_ignore_ascii_case("content-range")
                })
                .map(|(_, value)| value.clone()),
        },
    );
    if matches!(fault, Some(Fault::IgnoreRange)) {
        request
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("range"));
    }

    if let Some(Fault::Respond {
        status,
        headers,
        body,
    }) = &fault
    {
        // The client sends its whole body before it reads an answer: take it, or the answer
        // could be lost to a connection reset.
        if let RequestBody::Length(length) = request.body
            && io::copy(&mut (&mut reader).take(length), &mut io::sink())? < length
        {
            return Ok(());
        }
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(*status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        client.write_all(head.as_bytes())?;
        if request.method != "HEAD" {
            client.write_all(body)?;
        }
        client.flush()?;
        answered(shared, entry, *status);
        return finish(&client);
    }

    if let Some(Fault::EndlessBody { status }) = &fault {
        if let RequestBody::Length(length) = request.body
            && io::copy(&mut (&mut reader).take(length), &mut io::sink())? < length
        {
            return Ok(());
        }
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\
             Connection: close\r\n\r\n",
            reason(*status)
        );
        client.write_all(head.as_bytes())?;
        answered(shared, entry, *status);
        let filler = vec![b' '; COPY_CHUNK];
        // Until the client hangs up (a write fails) or, as a guard for a broken test, 64 GiB.
        for _ in 0..(1 << 20) {
            if client.write_all(&filler).is_err() {
                break;
            }
        }
        return Ok(());
    }

    if let Some(Fault::StopReading { after }) = &fault {
        let wanted = request.body.len().min(*after);
        io::copy(&mut (&mut reader).take(wanted), &mut io::sink())?;
        hold_until_hung_up(&client);
        return Ok(());
    }

    if let Some(Fault::CutRequestBody {
        after,
        reaches_registry,
    }) = &fault
    {
        let mut taken = Vec::new();
        (&mut reader).take(*after).read_to_end(&mut taken)?;
        if *reaches_registry && let Ok(mut upstream) = connect(shared) {
            // The registry is told the full length and gets only what came: its read breaks.
            let head = request_head(&request, request.body.len(), shared);
            let _ = upstream
                .write_all(head.as_bytes())
                .and_then(|()| upstream.write_all(&taken));
            // Long enough for the registry to take in what did arrive before the break.
            thread::sleep(Duration::from_millis(200));
            let _ = upstream.shutdown(Shutdown::Both);
        }
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }

    let mut upstream = match connect(shared) {
        Ok(upstream) => upstream,
        Err(error) => {
            let body = format!("fault proxy: cannot reach {}: {error}", shared.upstream);
            let head = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            client.write_all(head.as_bytes())?;
            client.write_all(body.as_bytes())?;
            answered(shared, entry, 502);
            return finish(&client);
        }
    };
    // An error here (the client aborting its body, the registry hanging up) drops both
    // connections, which is what each side would have seen without the proxy.
    send_request(&request, &mut reader, &mut upstream, shared)?;
    let Upstream {
        status,
        reason_phrase,
        headers,
        mut body,
    } = read_response(upstream)?;
    let no_body = request.method == "HEAD" || status == 204 || status == 304;
    let length = if no_body {
        None
    } else {
        Some(match body.length {
            Some(length) => length,
            None => {
                // Chunked or close-delimited: only small JSON answers come this way; having them
                // whole gives every response a Content-Length, which keeps faults simple.
                let mut whole = Vec::new();
                body.reader.read_to_end(&mut whole)?;
                let length = whole.len() as u64;
                body.reader = Box::new(io::Cursor::new(whole));
                length
            }
        })
    };

    let mut head = format!("HTTP/1.1 {status} {reason_phrase}\r\n");
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        // A HEAD answer's Content-Length describes the GET's body: it passes through as is.
        if lower == "content-length" && no_body {
            head.push_str(&format!("{name}: {value}\r\n"));
            continue;
        }
        if HOP_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        let value = if lower == "location" {
            rewrite_location(value, &shared.upstream, &shared.public_url)
        } else {
            value.clone()
        };
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(Fault::AddHeader { name, value }) = &fault {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    client.flush()?;
    answered(shared, entry, status);

    let Some(length) = length else {
        return finish(&client);
    };
    let (chunk, pause) = match &fault {
        Some(Fault::SlowBody { chunk, pause }) => ((*chunk).max(1), *pause),
        _ => (COPY_CHUNK, Duration::ZERO),
    };
    let (cut_after, hang) = match &fault {
        Some(Fault::CutBody { after }) => (Some(*after), false),
        Some(Fault::HangBody { after }) => (Some(*after), true),
        _ => (None, false),
    };
    let flip_at = matches!(fault, Some(Fault::CorruptBody)).then_some(length / 2);
    let mut buffer = vec![0; chunk];
    let mut sent = 0u64;
    loop {
        let room = match cut_after {
            Some(after) => (after.saturating_sub(sent)).min(chunk as u64) as usize,
            None => chunk,
        };
        if room == 0 {
            client.flush()?;
            if hang {
                hold_until_hung_up(&client);
            }
            // Announced length not reached: the client must see a broken transfer.
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        let read = body.reader.read(&mut buffer[..room])?;
        if read == 0 {
            break;
        }
        if let Some(flip_at) = flip_at
            && (sent..sent + read as u64).contains(&flip_at)
        {
            buffer[(flip_at - sent) as usize] ^= 0xff;
        }
        client.write_all(&buffer[..read])?;
        sent += read as u64;
        if !pause.is_zero() {
            client.flush()?;
            if shared.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(pause);
        }
    }
    client.flush()?;
    finish(&client)
}

/// Ends a connection whose answer is complete: half-close first, so the kernel does not reset
/// the connection (and lose the answer) should the client still have bytes in flight.
fn finish(client: &TcpStream) -> io::Result<()> {
    client.shutdown(Shutdown::Write)?;
    Ok(())
}

/// Logs a request that just arrived; returns its place in the log.
fn record(shared: &Shared, seen: SeenRequest) -> usize {
    let mut log = lock(&shared.log);
    log.push(seen);
    shared.logged.notify_all();
    log.len() - 1
}

/// Logs the status of the answer being sent for the request at `entry`.
fn answered(shared: &Shared, entry: usize, status: u16) {
    lock(&shared.log)[entry].status = Some(status);
    shared.logged.notify_all();
}

/// Reads one request with its whole body; `None` if the client closed without sending one.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> io::Result<Option<Request>> {
    let Some(head) = read_head(reader)? else {
        return Ok(None);
    };
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    let headers = parse_headers(lines);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    let chunked = header("Transfer-Encoding").is_some_and(is_chunked);
    let content_length = header("Content-Length")
        .map(|value| value.trim().parse::<u64>())
        .transpose()
        .map_err(|_| invalid("bad Content-Length".into()))?;
    if header("Expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if chunked {
        let mut body = Vec::new();
        ChunkedReader::new(&mut *reader).read_to_end(&mut body)?;
        RequestBody::Whole(body)
    } else if let Some(length) = content_length {
        RequestBody::Length(length)
    } else {
        RequestBody::None
    };
    Ok(Some(Request {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        headers,
        body,
    }))
}

/// Reads up to and including the blank line ending a message head; `None` at a clean end of
/// stream before any byte.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = reader.read_until(b'\n', &mut head)?;
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("message head too large".into()));
        }
    }
    String::from_utf8(head)
        .map(Some)
        .map_err(|_| invalid("non-UTF-8 message head".into()))
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn is_chunked(value: &str) -> bool {
    value
        .split(',')
        .any(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The registry's answer, its body not yet read.
struct Upstream {
    status: u16,
    reason_phrase: String,
    headers: Vec<(String, String)>,
    body: Body,
}

struct Body {
    /// The decoded body (chunked framing removed).
    reader: Box<dyn Read + Send>,
    /// Known in advance from Content-Length.
    length: Option<u64>,
}

fn connect(shared: &Shared) -> io::Result<TcpStream> {
    let address = shared
        .upstream
        .parse::<SocketAddr>()
        .map_err(|error| invalid(format!("upstream {}: {error}", shared.upstream)))?;
    let upstream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(upstream)
}

/// Sends the request to the registry as if the client had asked it directly, with
/// `Connection: close` and a Content-Length (a chunked body is whole by now), streaming the
/// client's body as it arrives.
fn send_request(
    request: &Request,
    client: &mut BufReader<TcpStream>,
    upstream: &mut TcpStream,
    shared: &Shared,
) -> io::Result<()> {
    let head = request_head(request, request.body.len(), shared);
    upstream.write_all(head.as_bytes())?;
    match &request.body {
        RequestBody::None => {}
        RequestBody::Whole(bytes) => upstream.write_all(bytes)?,
        RequestBody::Length(length) => {
            if io::copy(&mut client.take(*length), upstream)? < *length {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    upstream.flush()
}

/// The head of `request` as the registry gets it: its own headers but those of the hop, and
/// `Connection: close` with a Content-Length of `body_length` for a request with a body.
fn request_head(request: &Request, body_length: u64, shared: &Shared) -> String {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        request.method, request.path, shared.upstream
    );
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "host" || HOP_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !matches!(request.body, RequestBody::None) {
        head.push_str(&format!("Content-Length: {body_length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Reads the registry's answer up to its body.
fn read_response(upstream: TcpStream) -> io::Result<Upstream> {
    let mut reader = BufReader::new(upstream);
    loop {
        let head = read_head(&mut reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let status: u16 = parts
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        // Interim answers (100 Continue) precede the real one.
        if (100..200).contains(&status) {
            continue;
        }
        let reason_phrase = parts.next().unwrap_or("").trim().to_owned();
        let headers = parse_headers(lines);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let body = if header("Transfer-Encoding").is_some_and(|value| is_chunked(&value)) {
            Body {
                reader: Box::new(ChunkedReader::new(reader)),
                length: None,
            }
        } else if let Some(length) = header("Content-Length").and_then(|v| v.trim().parse().ok()) {
            Body {
                reader: Box::new(reader.take(length)),
                length: Some(length),
            }
        } else {
            Body {
                reader: Box::new(reader),
                length: None,
            }
        };
        return Ok(Upstream {
            status,
            reason_phrase,
            headers,
            body,
        });
    }
}

/// Points an absolute `Location` on the registry at the proxy instead, so that clients following
/// it (upload sessions) keep going through the proxy and its rules.
fn rewrite_location(value: &str, upstream: &str, public_url: &str) -> String {
    match value.strip_prefix(&format!("http://{upstream}")) {
        Some(rest) => format!("{public_url}{rest}"),
        None => value.to_owned(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// Decodes a chunked body (RFC 9112 §7.1), ignoring extensions and trailers.
struct ChunkedReader<R> {
    inner: R,
    /// Bytes left in the current chunk; `None` before a size line, at the end `Some(0)` with
    /// `done`.
    left: Option<u64>,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    fn new(inner: R) -> ChunkedReader<R> {
        ChunkedReader {
            inner,
            left: None,
            done: false,
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let left = match self.left {
            Some(left) if left > 0 => left,
            _ => {
                if self.left == Some(0) {
                    // The CRLF after the previous chunk's data.
                    self.read_line()?;
                }
                let line = self.read_line()?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    // Trailers, if any, end with a blank line.
                    while !matches!(self.read_line()?.as_str(), "\r\n" | "\n") {}
                    self.done = true;
                    return Ok(0);
                }
                size
            }
        };
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left = Some(left - read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_exchange(host: &str, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(host).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nrest";
        let mut reader = BufReader::new(&raw[..]);
        let mut body = String::new();
        ChunkedReader::new(&mut reader)
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "hello world");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "rest");
    }

    #[test]
    fn only_upstream_locations_are_rewritten() {
        assert_eq!(
            rewrite_location(
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=s",
                "127.0.0.1:5000",
                "http://127.0.0.1:6000"
            ),
            "http://127.0.0.1:6000/v2/a/blobs/uploads/u?_state=s"
        );
        assert_eq!(
            rewrite_location("/v2/a/blobs/x", "127.0.0.1:5000", "http://127.0.0.1:6000"),
            "/v2/a/blobs/x"
        );
    }

    #[test]
    fn rules_match_method_path_body_and_count_down() {
        let mut rule = Rule::refuse_monolithic_upload().times(1);
        assert!(!rule.matches("PUT", "/v2/a/blobs/uploads/u?digest=sha256%3Aab", 0));
        assert!(!rule.matches("PATCH", "/v2/a/blobs/uploads/u?digest=sha256%3Aab", 3));
        assert!(!rule.matches("PUT", "/v2/a/blobs/uploads/u?_state=s", 3));
        assert!(rule.matches(
            "PUT",
            "/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab",
            3
        ));
        rule.times = Some(0);
        assert!(!rule.matches(
            "PUT",
            "/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab",
            3
        ));
    }

    /// A whole upload through the proxy against a real registry: chunked request body,
    /// rewritten Location, injected status for the first request only, and the log.
    #[test]
    fn forwards_to_a_real_registry_and_injects_faults() {
        let registry = TestRegistry::start();
        let proxy = FaultProxy::start(&registry);
        proxy.add(Rule::status("GET", "/v2/", 503).times(1));

        let answer = raw_exchange(
            &proxy.host(),
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        let answer = raw_exchange(&proxy.host(), b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");

        let answer = raw_exchange(
            &proxy.host(),
            b"POST /v2/t/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        let location = answer
            .lines()
            .find_map(|line| line.strip_prefix("Location: "))
            .unwrap();
        assert!(location.starts_with(&proxy.url()), "{location}");

        let content = b"hello world";
        let digest = crate::sha256_digest(content);
        let path = location.strip_prefix(&proxy.url()).unwrap();
        let request = format!(
            "PUT {path}&digest={digest} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        );
        let answer = raw_exchange(&proxy.host(), request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(crate::registry_has_blob(&registry, "t", &digest));

        let head = raw_exchange(
            &proxy.host(),
            format!("HEAD /v2/t/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert!(head.contains("Content-Length: 11"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");

        let statuses: Vec<(String, Option<u16>, bool)> = proxy
            .requests()
            .into_iter()
            .map(|seen| (seen.method, seen.status, seen.faulted))
            .collect();
        assert_eq!(
            statuses,
            [
                ("GET".into(), Some(503), true),
                ("GET".into(), Some(200), false),
                ("POST".into(), Some(202), false),
                ("PUT".into(), Some(201), false),
                ("HEAD".into(), Some(200), false),
            ]
        );
    }

    #[test]
    fn body_faults_corrupt_cut_and_keep_the_announced_length() {
        let registry = TestRegistry::start();
        let layer = crate::Layer::random(99, 200_000);
        crate::push_docker_image(&registry, "t", "1", std::slice::from_ref(&layer));
        let proxy = FaultProxy::start(&registry);
        let path = format!("/v2/t/blobs/{}", layer.digest());
        proxy.add(Rule::corrupt_body("GET", &path).times(1));
        proxy.add(Rule::cut_body("GET", &path, 1000).times(1));

        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let body_of = |answer: &[u8]| {
            let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            answer[split + 4..].to_vec()
        };
        let fetch = || {
            let mut stream = TcpStream::connect(proxy.host()).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).unwrap();
            answer
        };
        let corrupted = body_of(&fetch());
        assert_eq!(corrupted.len(), layer.bytes().len());
        assert_ne!(crate::sha256_digest(&corrupted), layer.digest());
        let differing = corrupted
            .iter()
            .zip(layer.bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1);

        let cut = fetch();
        let split = cut.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let text = String::from_utf8_lossy(&cut[..split]).into_owned();
        assert!(
            text.contains(&format!("Content-Length: {}", layer.bytes().len())),
            "{text}"
        );
        assert_eq!(body_of(&cut).len(), 1000);

        assert_eq!(body_of(&fetch()), layer.bytes());
    }
}
