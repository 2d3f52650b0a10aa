//! A Docker token server (the `auth: token` protocol of CNCF distribution, Docker Hub, Harbor,
//! GitLab), so that bearer-token authentication is tested against the real registry instead of a
//! fake one: the registry verifies every token this server signs, exactly as in production.
//!
//! The server answers `GET /token?service=…&scope=repository:NAME:ACTIONS&scope=…` on a loopback
//! port with a JWT signed ES256 by a key of its own. The token's header carries the signing
//! certificate in `x5c`; the registry trusts it because [`TokenServer::certificate`] is its
//! `rootcertbundle`. Signatures come from `openssl`, like the test certificates in `tls.rs`, so
//! testkit needs no JWT or crypto library.
//!
//! It is deliberately small: std threads and blocking sockets, one request per connection
//! (`Connection: close`), one known user. Every request is recorded so tests can assert what
//! a client asked for and how often it came back for a new token.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64_URL};
use serde_json::json;
use tempfile::TempDir;

use crate::tools::{require_tools, run};

/// The `service` the registry names in its challenge and expects as the token's audience.
const SERVICE: &str = "test-registry";
/// The `iss` claim, which the registry must list as its trusted `issuer`.
const ISSUER: &str = "test-issuer";

/// distribution 2.8 accepts a token until 60 s after its `exp` (and from 60 s before its `nbf`)
/// to allow for clock skew. `exp` is set this much earlier than the advertised lifetime so that a
/// token with a lifetime of a few seconds really stops working after those few seconds, which is
/// what token-refresh tests need.
const REGISTRY_LEEWAY: Duration = Duration::from_secs(60);

/// A client that connects and sends nothing must not pin a handler thread forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest request head accepted; token requests are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// The self-signed certificate of the signing key. `req -x509` needs a config for its
/// extensions; writing one keeps the result independent of the system's `openssl.cnf`.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = subject
prompt = no
x509_extensions = signer

[subject]
CN = testkit token issuer

[signer]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
subjectKeyIdentifier = hash
";

/// What a token request without credentials gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    /// 401, as token servers that serve no public content answer.
    Refused,
    /// A token that grants nothing, as Docker Hub answers for a private repository; the
    /// registry then refuses every request that needs access.
    NoAccess,
    /// A token granting the `pull` part of each scope: a public registry.
    Pull,
}

/// Who may have which token.
#[derive(Clone, Debug)]
pub struct TokenServerOptions {
    /// The user with full access and its password. Basic credentials that match no account get
    /// 401, as the spec asks of a token server that cannot authenticate a client.
    pub credentials: (String, String),
    /// A second account that is granted only the `pull` part of each scope, for tests of a
    /// valid login without the rights a job needs.
    pub read_only: Option<(String, String)>,
    /// What a request without credentials gets.
    pub anonymous: Anonymous,
    /// How long a token works, also sent as `expires_in`. Whole seconds, at least one; the
    /// registry checks `exp` with one-second resolution, so a token works for between
    /// `lifetime - 1s` and `lifetime` after it was issued.
    pub lifetime: Duration,
}

impl Default for TokenServerOptions {
    fn default() -> TokenServerOptions {
        TokenServerOptions {
            credentials: ("token-user".to_owned(), "token-pass".to_owned()),
            read_only: None,
            anonymous: Anonymous::NoAccess,
            lifetime: Duration::from_secs(300),
        }
    }
}

/// One request the server answered, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `service` parameter, if sent.
    pub service: Option<String>,
    /// Every `scope` as sent, e.g. `repository:team/app:pull,push`, in request order.
    pub scopes: Vec<String>,
    /// The user name of the Basic credentials sent; `None` for an anonymous request.
    pub user: Option<String>,
    /// Whether a token was issued; `false` means the server answered with an error (401 for
    /// wrong credentials or a refused anonymous request).
    pub issued: bool,
    /// What the token grants, one `repository:NAME:ACTIONS` per resource; empty if none.
    pub granted: Vec<String>,
}

/// A running token server on `127.0.0.1`. Dropping it stops the server and removes its key.
pub struct TokenServer {
    port: u16,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    /// Holds the key and certificate; removed on drop.
    dir: TempDir,
}

/// What the handler threads share.
struct State {
    options: TokenServerOptions,
    key: PathBuf,
    /// Base64 (standard alphabet, as JWS `x5c` wants) of the certificate's DER.
    certificate_der: String,
    requests: Mutex<Vec<TokenRequest>>,
}

impl fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.realm())
            .field("user", &self.state.options.credentials.0)
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Makes a signing key and its certificate, binds a free loopback port and starts serving.
    /// The port is bound before this returns, so the server is ready at once.
    #[track_caller]
    pub fn start(options: TokenServerOptions) -> TokenServer {
        require_tools();
        assert!(
            options.lifetime >= Duration::from_secs(1),
            "a token lifetime under one second cannot be expressed in `exp`"
        );
        let dir = tempfile::Builder::new()
            .prefix("testkit-token-")
            .tempdir()
            .unwrap();
        let (key, certificate) = make_signing_key(dir.path());
        let certificate_der = pem_body(&std::fs::read_to_string(&certificate).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            options,
            key,
            certificate_der,
            requests: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            thread::spawn(move || accept_loop(&listener, &state, &stop))
        };
        TokenServer {
            port,
            state,
            stop,
            acceptor: Some(acceptor),
            dir,
        }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The registry's `service`, which tokens carry as their audience.
    pub fn service(&self) -> &str {
        SERVICE
    }

    /// The registry's trusted `issuer`.
    pub fn issuer(&self) -> &str {
        ISSUER
    }

    /// The PEM certificate of the signing key: the registry's `rootcertbundle`.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("signer.crt")
    }

    /// The user and password the server accepts.
    pub fn credentials(&self) -> (&str, &str) {
        let (user, password) = &self.state.options.credentials;
        (user, password)
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Forgets the requests answered so far, e.g. those of a test's own setup.
    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// How many tokens were issued for requests that asked for `scope` (exactly as sent, e.g.
    /// `repository:team/app:pull,push`), alone or with other scopes.
    pub fn tokens_issued_for(&self, scope: &str) -> usize {
        self.requests()
            .iter()
            .filter(|request| request.issued && request.scopes.iter().any(|s| s == scope))
            .count()
    }

    /// Signs a token for `subject` granting `access`, each `(repository, actions)`, without an
    /// HTTP round trip; for a test that talks to the registry API itself.
    #[track_caller]
    pub fn issue(&self, subject: &str, access: &[(&str, &[&str])]) -> String {
        let access: Vec<Grant> = access
            .iter()
            .map(|(name, actions)| Grant {
                name: (*name).to_owned(),
                actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            })
            .collect();
        self.state
            .sign_token(subject, SERVICE, &access)
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // `accept` blocks; one connection wakes it up to see the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(state);
        // A thread per connection: clients fetch tokens for several scopes at once.
        thread::spawn(move || {
            // A broken connection only concerns that client, which sees it as such.
            let _ = serve_connection(stream, &state);
        });
    }
}

/// A parsed request: method, path and decoded query parameters, and the headers.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap(),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({ "errors": [{ "code": code, "message": message }] }),
        )
    }
}

fn serve_connection(mut stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let reply = match read_request(&mut stream)? {
        Some(request) => answer(&request, state),
        None => return Ok(()),
    };
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body)?;
    stream.flush()
}

/// Reads one request head and its body (read to keep the connection orderly, then ignored).
/// `None` for a connection closed before a full head, such as the wake-up from `Drop`.
fn read_request(stream: &mut TcpStream) -> io::Result<Option<Request>> {
    let mut raw = Vec::new();
    let mut chunk = [0; 4096];
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if raw.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let request = Request {
        method,
        path: path.to_owned(),
        query: parse_query(query),
        headers,
    };
    let length: usize = request
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body_read = raw.len() - (end + 4);
    while body_read < length {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        body_read += read;
    }
    Ok(Some(request))
}

/// Authenticates the client, decides what it may do and signs a token for that.
fn answer(request: &Request, state: &State) -> Reply {
    if request.path != "/token" {
        return Reply::error(404, "NOT_FOUND", "only /token is served here");
    }
    // POST is the OAuth2 refresh-token flow, which this server does not implement.
    if request.method != "GET" {
        return Reply::error(405, "UNSUPPORTED", "only GET /token is served here");
    }
    let service = request.params("service").next().map(str::to_owned);
    // The spec allows several scopes in one parameter, separated by spaces.
    let scopes: Vec<String> = request
        .params("scope")
        .flat_map(|scope| scope.split(' '))
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect();
    let basic = request.header("authorization").and_then(basic_credentials);
    let mut record = TokenRequest {
        service: service.clone(),
        scopes: scopes.clone(),
        user: basic.as_ref().map(|(user, _)| user.clone()),
        issued: false,
        granted: Vec::new(),
    };

    let reply = (|| {
        // Which actions of each requested scope this client may have: None for all of them.
        let allowed: Option<&str> = match &basic {
            Some(credentials) if *credentials == state.options.credentials => None,
            Some(credentials) if state.options.read_only.as_ref() == Some(credentials) => {
                Some("pull")
            }
            Some(_) => return unauthorized("wrong user name or password"),
            None => match state.options.anonymous {
                Anonymous::Refused => return unauthorized("anonymous access is not allowed"),
                // No action is named "", so nothing is granted.
                Anonymous::NoAccess => Some(""),
                Anonymous::Pull => Some("pull"),
            },
        };
        let mut grants = Vec::new();
        for scope in &scopes {
            let Some(grant) = Grant::parse(scope) else {
                return Reply::error(400, "INVALID_SCOPE", &format!("cannot read {scope:?}"));
            };
            let grant = match allowed {
                None => grant,
                Some(action) => grant.only(action),
            };
            if !grant.actions.is_empty() {
                grants.push(grant);
            }
        }
        let audience = service.as_deref().unwrap_or(SERVICE);
        let subject = basic.as_ref().map_or("", |(user, _)| user.as_str());
        match state.sign_token(subject, audience, &grants) {
            Ok(token) => {
                record.issued = true;
                record.granted = grants.iter().map(Grant::to_scope).collect();
                Reply::json(
                    200,
                    &json!({
                        "token": token,
                        "access_token": token,
                        "expires_in": state.options.lifetime.as_secs(),
                    }),
                )
            }
            Err(message) => Reply::error(500, "SIGNING_FAILED", &message),
        }
    })();
    state.requests.lock().unwrap().push(record);
    reply
}

/// 401 with a Basic challenge: the client must (re)send credentials.
fn unauthorized(message: &str) -> Reply {
    let mut reply = Reply::error(401, "UNAUTHORIZED", message);
    reply
        .headers
        .push(("WWW-Authenticate", "Basic realm=\"testkit-token\"".into()));
    reply
}

/// One resource the token grants actions on.
struct Grant {
    name: String,
    actions: Vec<String>,
}

impl Grant {
    /// `repository:NAME:ACTIONS`; the name is everything between the first and the last colon.
    fn parse(scope: &str) -> Option<Grant> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        (kind == "repository" && !name.is_empty()).then(|| Grant {
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Keeps only `action`, if it was asked for.
    fn only(mut self, action: &str) -> Grant {
        self.actions.retain(|a| a == action);
        self
    }

    fn to_scope(&self) -> String {
        format!("repository:{}:{}", self.name, self.actions.join(","))
    }
}

impl State {
    /// A compact JWS: base64url(header).base64url(claims).base64url(signature).
    fn sign_token(
        &self,
        subject: &str,
        audience: &str,
        grants: &[Grant],
    ) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let now = now.as_secs();
        let lifetime = self.options.lifetime.as_secs();
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [self.certificate_der],
        });
        let access: Vec<serde_json::Value> = grants
            .iter()
            .map(|grant| json!({ "type": "repository", "name": grant.name, "actions": grant.actions }))
            .collect();
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            // Seconds since the epoch, as JWT wants; see REGISTRY_LEEWAY for the subtraction.
            "exp": (now + lifetime).saturating_sub(REGISTRY_LEEWAY.as_secs()),
            "nbf": now,
            "iat": now,
            "jti": format!("{:016x}", fastrand::u64(..)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            BASE64_URL.encode(serde_json::to_vec(&header).unwrap()),
            BASE64_URL.encode(serde_json::to_vec(&claims).unwrap())
        );
        let der = openssl_sign(&self.key, signing_input.as_bytes())?;
        let signature = ecdsa_der_to_raw(&der)?;
        Ok(format!("{signing_input}.{}", BASE64_URL.encode(signature)))
    }
}

/// Makes an ECDSA P-256 key and a self-signed certificate for it in `dir`: `(key, certificate)`.
#[track_caller]
fn make_signing_key(dir: &Path) -> (PathBuf, PathBuf) {
    let config = dir.join("openssl.cnf");
    std::fs::write(&config, OPENSSL_CONFIG).unwrap();
    let key = dir.join("signer.key");
    let certificate = dir.join("signer.crt");
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "30", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-config",
        ])
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate));
    (key, certificate)
}

/// The base64 between the PEM armour lines, which is the DER in standard base64: exactly what
/// `x5c` holds.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .map(str::trim)
        .collect()
}

/// `openssl dgst -sha256 -sign KEY` over `input`: a DER `ECDSA-Sig-Value` for an EC key.
fn openssl_sign(key: &Path, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run openssl: {err}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .map_err(|err| format!("cannot write to openssl: {err}"))?;
    let output = child
        .wait_with_output()
        .map_err(|err| format!("openssl dgst: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}

/// JWS ES256 wants the signature as `r || s`, each a 32-byte big-endian number; openssl gives
/// DER `SEQUENCE { INTEGER r, INTEGER s }`, whose integers drop leading zero bytes and gain a
/// zero byte when the top bit is set.
fn ecdsa_der_to_raw(der: &[u8]) -> Result<Vec<u8>, String> {
    fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
        let malformed = || format!("malformed DER signature element {tag:#x}");
        let (&found, rest) = input.split_first().ok_or_else(malformed)?;
        if found != tag {
            return Err(malformed());
        }
        let (&first, rest) = rest.split_first().ok_or_else(malformed)?;
        let (length, rest) = match first {
            length @ 0..=0x7f => (usize::from(length), rest),
            // Long form with one length byte; a P-256 signature never needs more.
            0x81 => {
                let (&length, rest) = rest.split_first().ok_or_else(malformed)?;
                (usize::from(length), rest)
            }
            _ => return Err(malformed()),
        };
        if rest.len() < length {
            return Err(malformed());
        }
        Ok(rest.split_at(length))
    }
    let (sequence, _) = element(der, 0x30)?;
    let (r, rest) = element(sequence, 0x02)?;
    let (s, _) = element(rest, 0x02)?;
    let mut raw = Vec::with_capacity(64);
    for number in [r, s] {
        let start = number.iter().position(|&b| b != 0).unwrap_or(number.len());
        let digits = &number[start..];
        if digits.len() > 32 {
            return Err("DER signature integer longer than 32 bytes".into());
        }
        raw.extend(std::iter::repeat_n(0, 32 - digits.len()));
        raw.extend_from_slice(digits);
    }
    Ok(raw)
}

/// The user and password of an `Authorization: Basic …` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `a=1&b=x%3Ay+z` → `[("a", "1"), ("b", "x:y z")]`.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(index + 1..index + 3);
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestRegistry;
    use crate::http::Endpoint;

    fn endpoint(host: String, authorization: Option<String>) -> Endpoint {
        Endpoint {
            host,
            tls: None,
            authorization,
        }
    }

    fn token_server_host(server: &TokenServer) -> String {
        server
            .realm()
            .trim_start_matches("http://")
            .trim_end_matches("/token")
            .to_owned()
    }

    /// The real registry is the judge: it must take a token granting the access a request
    /// needs, and refuse one that grants less, is tampered with, or has expired.
    #[test]
    fn distribution_accepts_issued_tokens_and_only_those() {
        let (registry, server) = TestRegistry::start_with_token_auth(TokenServerOptions {
            lifetime: Duration::from_secs(2),
            ..TokenServerOptions::default()
        });
        let get = |path: &str, token: Option<&str>| {
            endpoint(registry.host(), token.map(|t| format!("Bearer {t}")))
                .send("GET", path, &[], &[])
                .unwrap()
        };
        let challenge = get("/v2/", None);
        assert_eq!(challenge.status, 401);
        let header = challenge.header("www-authenticate").unwrap();
        assert!(
            header.contains(&server.realm()) && header.contains("service=\"test-registry\""),
            "{header}"
        );

        let pull = server.issue("someone", &[("team/app", &["pull"])]);
        let tags = "/v2/team/app/tags/list";
        // 404 NAME_UNKNOWN: past authentication, the repository just does not exist yet.
        assert_eq!(
            get(tags, Some(&pull)).status,
            404,
            "{}",
            get(tags, Some(&pull)).text()
        );
        assert_eq!(get("/v2/other/app/tags/list", Some(&pull)).status, 401);
        let nothing = server.issue("someone", &[]);
        assert_eq!(get("/v2/", Some(&nothing)).status, 200);
        assert_eq!(get(tags, Some(&nothing)).status, 401);
        let mut tampered = pull.clone().into_bytes();
        let middle = pull.find('.').unwrap() + 3;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            get(tags, Some(&String::from_utf8(tampered).unwrap())).status,
            401
        );

        // Lifetime 2 s means at most 2 s, despite distribution's 60 s leeway.
        thread::sleep(Duration::from_millis(2100));
        assert_eq!(get(tags, Some(&pull)).status, 401);
    }

    #[test]
    fn token_endpoint_checks_credentials_and_records_requests() {
        let server = TokenServer::start(TokenServerOptions {
            read_only: Some(("reader".to_owned(), "reader-pass".to_owned())),
            anonymous: Anonymous::Pull,
            ..TokenServerOptions::default()
        });
        let query = "/token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush";
        let basic = |password: &str| {
            Some(format!(
                "Basic {}",
                BASE64.encode(format!("token-user:{password}"))
            ))
        };
        let host = token_server_host(&server);

        let wrong = endpoint(host.clone(), basic("nope"))
            .send("GET", query, &[], &[])
            .unwrap();
        assert_eq!(wrong.status, 401);
        assert!(!wrong.text().contains("token\""), "{}", wrong.text());

        let right = endpoint(host.clone(), basic("token-pass"))
            .send("GET", query, &[], &[])
            .unwrap();
        assert_eq!(right.status, 200, "{}", right.text());
        let body: serde_json::Value = serde_json::from_slice(&right.body).unwrap();
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body["token"], body["access_token"]);
        let claims = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&BASE64_URL.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["aud"], "test-registry");
        assert_eq!(claims["iss"], "test-issuer");
        assert_eq!(claims["sub"], "token-user");
        assert_eq!(
            claims["access"],
            json!([{ "type": "repository", "name": "team/app", "actions": ["pull", "push"] }])
        );

        let anonymous = endpoint(host.clone(), None)
            .send("GET", query, &[], &[])
            .unwrap();
        assert_eq!(anonymous.status, 200);
        let reader = Some(format!("Basic {}", BASE64.encode("reader:reader-pass")));
        let reader = endpoint(host, reader).send("GET", query, &[], &[]).unwrap();
        assert_eq!(reader.status, 200);

        let requests = server.requests();
        let summary: Vec<(Option<&str>, bool, Vec<String>)> = requests
            .iter()
            .map(|r| (r.user.as_deref(), r.issued, r.granted.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("token-user"), false, vec![]),
                (
                    Some("token-user"),
                    true,
                    vec!["repository:team/app:pull,push".to_owned()]
                ),
                (None, true, vec!["repository:team/app:pull".to_owned()]),
                (
                    Some("reader"),
                    true,
                    vec!["repository:team/app:pull".to_owned()]
                ),
            ]
        );
        assert!(
            requests
                .iter()
                .all(|r| r.scopes == ["repository:team/app:pull,push"])
        );
        assert_eq!(server.tokens_issued_for("repository:team/app:pull,push"), 3);
        server.clear_requests();
        assert!(server.requests().is_empty());

        let closed = TokenServer::start(TokenServerOptions {
            anonymous: Anonymous::Refused,
            ..TokenServerOptions::default()
        });
        let refused = endpoint(token_server_host(&closed), None)
            .send("GET", query, &[], &[])
            .unwrap();
        assert_eq!(refused.status, 401);
        assert!(!closed.requests()[0].issued);
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            parse_query("service=test-registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&x=a+b"),
            vec![
                ("service".to_owned(), "test-registry".to_owned()),
                (
                    "scope".to_owned(),
                    "repository:team/app:pull,push".to_owned()
                ),
                ("x".to_owned(), "a b".to_owned()),
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn scopes_are_parsed_and_narrowed() {
        let grant = Grant::parse("repository:team/app:pull,push").unwrap();
        assert_eq!(grant.name, "team/app");
        assert_eq!(grant.actions, ["pull", "push"]);
        assert_eq!(grant.only("pull").to_scope(), "repository:team/app:pull");
        assert!(Grant::parse("registry:catalog:*").is_none());
        assert!(Grant::parse("repository").is_none());
    }

    #[test]
    fn der_signatures_become_fixed_width() {
        // r with a sign-padding zero byte (33 bytes), s short (31 bytes).
        let mut der = vec![0x30, 2 + 33 + 2 + 31, 0x02, 33, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 31]);
        der.extend([0x11; 31]);
        let raw = ecdsa_der_to_raw(&der).unwrap();
        assert_eq!(raw.len(), 64);
        assert_eq!(&raw[..32], &[0x80; 32]);
        assert_eq!(raw[32], 0);
        assert_eq!(&raw[33..], &[0x11; 31]);
        assert!(ecdsa_der_to_raw(&[0x30, 5, 0x02]).is_err());
    }

    #[test]
    fn basic_headers_are_read() {
        let header = format!("Basic {}", BASE64.encode("u:p:q"));
        assert_eq!(
            basic_credentials(&header),
            Some(("u".to_owned(), "p:q".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
