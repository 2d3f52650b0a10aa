//! The registry handle: one per endpoint and credential set, shared by every image of a job.
//!
//! It owns the request plumbing every operation goes through: scheme resolution (ping),
//! authentication with token refresh on 401, and retries with backoff on connection errors,
//! 5xx and 429. Operations themselves live in `blobs.rs` and `manifest_requests.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{OnceCell, RwLock};

use crate::auth::{self, Challenge, Credentials, Scope, Secret, TokenCache};
use crate::endpoint::{Endpoint, Scheme, TlsOptions, discovered_scheme, http_client};
use crate::error::{Error, NetworkFailure, Result};
use crate::retry::{RetryPolicy, retry_after};

/// What is read of an error answer's body: registries explain themselves in its first lines.
const ERROR_BODY_LIMIT: usize = 8 << 10;
/// A token endpoint's answer: a token and a few fields (real ones are a few KiB).
const TOKEN_BODY_LIMIT: usize = 1 << 20;

/// Everything needed to open a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `[scheme://]host[:port][/prefix]`.
    pub address: String,
    /// Explicit credentials (cfg.yaml `user`/`password`); when absent, Docker's config is used.
    pub credentials: Option<Credentials>,
    pub tls: TlsOptions,
    pub retry: RetryPolicy,
    /// How long one read may wait for a byte before the request fails as timed out; `None`
    /// is [`DEFAULT_READ_TIMEOUT`]. A backstop: jobs detect stalled transfers sooner, and
    /// name the side that stalled.
    pub read_timeout: Option<Duration>,
    /// A download that receives nothing for this long is resumed from its last byte on a new
    /// connection. `None` leaves a stalled download to `read_timeout`, which resumes it too.
    pub stalled_read: Option<Duration>,
    /// Uploads go in chunks of this many bytes, each on a connection of its own, from the
    /// start (a proxy known to cut connections, or to cap request bodies). `None`: one request
    /// per blob until a connection breaks; see `upload.rs`.
    pub upload_chunk: Option<u64>,
    /// Whether to look credentials up in Docker's config.json when none are given.
    pub use_docker_config: bool,
    /// For an address without a scheme: try HTTPS first, then plain HTTP, as the original tool
    /// did for such cfg.yaml entries. Certificates are still verified when HTTPS answers.
    pub http_fallback: bool,
}

/// A connection to one registry. Cloning is cheap and shares tokens and connections.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    explicit_credentials: Option<Credentials>,
    use_docker_config: bool,
    http: reqwest::Client,
    retry: RetryPolicy,
    stalled_read: Option<Duration>,
    /// The base URL (`scheme://host`) and challenge found by the first ping.
    base: OnceCell<String>,
    challenge: RwLock<Option<Challenge>>,
    secret: OnceCell<Secret>,
    tokens: TokenCache,
    /// Set once the registry refused a single-request upload; later uploads go in chunks.
    pub(crate) chunked_uploads: AtomicBool,
    /// The largest upload chunk since a connection broke under a request (0: none broke);
    /// see `upload.rs`.
    upload_chunk: AtomicU64,
    /// Whether `upload_chunk` was learned from a broken request (not given by the user).
    chunk_learned: AtomicBool,
    /// A token service that was not sent the password (see `may_receive_credentials`): a
    /// refusal that follows is explained by that, not as a wrong password.
    withheld_from: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.inner.endpoint.host)
            .finish_non_exhaustive()
    }
}

const USER_AGENT: &str = concat!("image-transmit/", env!("CARGO_PKG_VERSION"));
/// How long a read may wait for a byte when [`RegistryOptions::read_timeout`] is not given.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a 429 `Retry-After` may pause one request.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

impl Registry {
    pub fn new(options: RegistryOptions) -> Result<Registry> {
        let mut endpoint = Endpoint::parse(&options.address)?;
        if options.http_fallback && !options.address.contains("://") {
            endpoint.scheme = Scheme::HttpsThenHttp;
        }
        let read_timeout = options.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT);
        let http = http_client(&options.tls, read_timeout, USER_AGENT)?;
        Ok(Registry {
            inner: Arc::new(Inner {
                endpoint,
                explicit_credentials: options.credentials,
                use_docker_config: options.use_docker_config,
                http,
                retry: options.retry,
                stalled_read: options.stalled_read,
                base: OnceCell::new(),
                challenge: RwLock::new(None),
                secret: OnceCell::new(),
                tokens: TokenCache::default(),
                chunked_uploads: AtomicBool::new(false),
                upload_chunk: AtomicU64::new(options.upload_chunk.unwrap_or(0)),
                chunk_learned: AtomicBool::new(false),
                withheld_from: std::sync::Mutex::new(None),
            }),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub fn host(&self) -> &str {
        &self.inner.endpoint.host
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    pub(crate) fn stalled_read(&self) -> Option<Duration> {
        self.inner.stalled_read
    }

    pub(crate) fn chunk_limit_cell(&self) -> &AtomicU64 {
        &self.inner.upload_chunk
    }

    pub(crate) fn chunk_was_learned(&self) {
        self.inner.chunk_learned.store(true, Ordering::Relaxed);
    }

    /// The upload chunk size this client fell back to after a connection broke under an
    /// upload, if one did: worth telling the user, who can set it from the start next time.
    pub fn learned_chunk(&self) -> Option<u64> {
        self.inner
            .chunk_learned
            .load(Ordering::Relaxed)
            .then(|| self.inner.upload_chunk.load(Ordering::Relaxed))
    }

    pub(crate) fn inner_chunked(&self) -> &AtomicBool {
        &self.inner.chunked_uploads
    }

    /// Checks that the registry answers and accepts the credentials, so a job fails early with
    /// one clear error instead of once per image.
    pub async fn check(&self, repository: &str, push: bool) -> Result<()> {
        self.base_url().await?;
        if matches!(*self.inner.challenge.read().await, Some(Challenge::None)) {
            // The ping was answered without asking for a login: nothing more to check.
            return Ok(());
        }
        let scope = if push {
            Scope::push(repository)
        } else {
            Scope::pull(repository)
        };
        let response = self.send(Method::GET, "/v2/", &[scope], &|r| r).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(response, "GET", "/v2/").await)
        }
    }

    /// `scheme://host`, resolved by pinging `/v2/` once.
    pub(crate) async fn base_url(&self) -> Result<&str> {
        self.inner
            .base
            .get_or_try_init(|| self.ping())
            .await
            .map(String::as_str)
    }

    async fn ping(&self) -> Result<String> {
        let endpoint = &self.inner.endpoint;
        let https = match endpoint.scheme {
            Scheme::Http => false,
            Scheme::Https => true,
            Scheme::HttpsThenHttp => {
                // Every handle on this host waits for the first one's probe and then uses what
                // it found, so a run probes each host once, however many handles it opens.
                let found = discovered_scheme(&endpoint.host);
                let mut probed = None;
                let scheme = found
                    .get_or_try_init(|| async {
                        let (https, response) = self.probe().await?;
                        probed = Some((https, response));
                        Ok::<_, Error>(if https { Scheme::Https } else { Scheme::Http })
                    })
                    .await?;
                if let Some((https, response)) = probed {
                    return self.take_ping(response, endpoint.base_url(https)).await;
                }
                *scheme == Scheme::Https
            }
        };
        let base = endpoint.base_url(https);
        let url = format!("{base}/v2/");
        let response = self.execute(&|| self.inner.http.get(&url)).await?;
        self.take_ping(response, base).await
    }

    /// For an address without a scheme: HTTPS, or plain HTTP when HTTPS cannot be had. The
    /// answer to `GET /v2/` comes back with whether it came over HTTPS.
    ///
    /// A server that answers the TLS handshake in plain HTTP, or closes it, is asked over HTTP
    /// at once: retrying the handshake only made every command seconds slower. Other failures
    /// are retried as usual before HTTP is tried, and are what is reported when HTTP fails too.
    /// An untrusted certificate is reported as it is, never answered by falling back.
    async fn probe(&self) -> Result<(bool, Response)> {
        let endpoint = &self.inner.endpoint;
        let https_url = format!("{}/v2/", endpoint.base_url(true));
        let https_failure = match self
            .execute_until(&|| self.inner.http.get(&https_url), PlainHttpSign::Possible)
            .await
        {
            Ok(response) => return Ok((true, response)),
            Err(Failure {
                error: error @ Error::TlsVerification { .. },
                ..
            }) => return Err(error),
            Err(failure) => failure,
        };
        tracing::debug!(host = self.host(), error = %https_failure.error, "trying plain HTTP");
        let http_url = format!("{}/v2/", endpoint.base_url(false));
        match self.execute(&|| self.inner.http.get(&http_url)).await {
            Ok(response) => Ok((false, response)),
            // The server showed it does not speak TLS: what went wrong over HTTP is the news.
            Err(error) if https_failure.plain_http.is_some() => Err(error),
            Err(_) => Err(https_failure.error),
        }
    }

    /// Reads the ping's answer: the challenge, or the error that ends the job.
    async fn take_ping(&self, response: Response, base: String) -> Result<String> {
        let challenge = match response.status() {
            StatusCode::UNAUTHORIZED => response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse)
                .unwrap_or(Challenge::Basic),
            status if status.is_success() => Challenge::None,
            _ => return Err(self.status_error(response, "GET", "/v2/").await),
        };
        *self.inner.challenge.write().await = Some(challenge);
        Ok(base)
    }

    async fn secret(&self) -> &Secret {
        self.inner
            .secret
            .get_or_init(|| async {
                match &self.inner.explicit_credentials {
                    Some(credentials) => Secret::Basic(credentials.clone()),
                    None if self.inner.use_docker_config => {
                        Secret::from_docker_config(self.inner.endpoint.credential_key()).await
                    }
                    None => Secret::Anonymous,
                }
            })
            .await
    }

    /// The Authorization header for a request needing `scopes`, fetching a token if needed.
    async fn authorization(&self, scopes: &[Scope]) -> Result<Option<String>> {
        self.base_url().await?;
        let challenge = self.inner.challenge.read().await.clone();
        match challenge {
            None | Some(Challenge::None) => Ok(None),
            Some(Challenge::Basic) => Ok(self.secret().await.basic_header()),
            Some(Challenge::Bearer { realm, service }) => {
                let key = auth::scope_key(scopes);
                if let Some(token) = self.inner.tokens.get(&key).await {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let secret = self.secret().await;
                // A password goes to a token service only over HTTPS or on the registry's own
                // host: a realm elsewhere over plain HTTP would carry it readable across networks
                // to a host the user never named. The request goes without it then; a service
                // that needs it refuses, and that is explained.
                let withheld =
                    !matches!(secret, Secret::Anonymous) && !self.may_receive_credentials(&realm);
                let sent = if withheld {
                    *self
                        .inner
                        .withheld_from
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(realm.clone());
                    &Secret::Anonymous
                } else {
                    secret
                };
                let response = self
                    .execute(&|| {
                        auth::token_request(
                            &self.inner.http,
                            &realm,
                            service.as_deref(),
                            scopes,
                            sent,
                        )
                    })
                    .await?;
                let status = response.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(self.unauthorized().await);
                }
                if !status.is_success() {
                    return Err(self.status_error(response, "GET", "token").await);
                }
                let body = self
                    .body_within(response, TOKEN_BODY_LIMIT)
                    .await?
                    .unwrap_or_default();
                let issued = auth::parse_token_response(&body).ok_or_else(|| Error::Protocol {
                    host: self.host().to_string(),
                    detail: "the token endpoint answered without a token".into(),
                })?;
                let header = format!("Bearer {}", issued.token);
                self.inner
                    .tokens
                    .store(key, issued.token, issued.lifetime)
                    .await;
                Ok(Some(header))
            }
        }
    }

    /// Whether a token service at `realm` may be sent this registry's password: over HTTPS,
    /// or on the registry's own host.
    fn may_receive_credentials(&self, realm: &str) -> bool {
        let Ok(url) = url::Url::parse(realm) else {
            return false;
        };
        // The endpoint's host carries its port; the URL parser splits it off (and lowercases).
        let own = url::Url::parse(&format!("http://{}", self.inner.endpoint.host)).ok();
        url.scheme() == "https"
            || own.is_some_and(|own| own.host().is_some() && own.host() == url.host())
    }

    /// After a 401: forget the token for these scopes and take the challenge the registry
    /// sent now (it may name a different realm than the ping did).
    async fn reauthenticate(&self, response: &Response, scopes: &[Scope]) {
        self.inner.tokens.forget(&auth::scope_key(scopes)).await;
        if let Some(challenge) = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
        {
            *self.inner.challenge.write().await = Some(challenge);
        }
    }

    /// The URL of a path under `/v2/`, or an absolute URL (upload locations) resolved against
    /// the base.
    pub(crate) async fn url(&self, path_or_url: &str) -> Result<String> {
        let base = self.base_url().await?;
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            return Ok(path_or_url.to_string());
        }
        if path_or_url.starts_with('/') {
            return Ok(format!("{base}{path_or_url}"));
        }
        Ok(format!("{base}/v2/{path_or_url}"))
    }

    /// Whether `url` (as [`Self::url`] made it) is on this registry's own scheme, host and
    /// port. A registry may send an upload elsewhere (its `Location`); the credentials meant
    /// for it do not follow, as containerd sends a host only that host's credentials.
    pub(crate) async fn is_own_origin(&self, url: &str) -> Result<bool> {
        let base = self.base_url().await?;
        // The same origin may be written with its default port.
        let with_port = match base.strip_prefix("https://") {
            Some(host) if !host.contains(':') || host.ends_with(']') => format!("{base}:443"),
            _ => match base.strip_prefix("http://") {
                Some(host) if !host.contains(':') || host.ends_with(']') => format!("{base}:80"),
                _ => base.to_string(),
            },
        };
        Ok([base, with_port.as_str()].iter().any(|origin| {
            url == *origin
                || url
                    .strip_prefix(origin)
                    .is_some_and(|rest| rest.starts_with(['/', '?']))
        }))
    }

    /// Sends a request that can be rebuilt at will (no streaming body): authenticated,
    /// retried on transient failures, re-authenticated once on 401.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        scopes: &[Scope],
        configure: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let url = self.url(path_or_url).await?;
        let own = self.is_own_origin(&url).await?;
        let mut reauthenticated = false;
        loop {
            let authorization = if own {
                self.authorization(scopes).await?
            } else {
                None
            };
            let response = self
                .execute(&|| {
                    let mut request = self.inner.http.request(method.clone(), &url);
                    if let Some(value) = &authorization {
                        request = request.header(AUTHORIZATION, value);
                    }
                    configure(request)
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if reauthenticated {
                // A valid login whose token lacks the rights asked for (read-only user pushing)
                // is a permission problem, not a wrong password.
                let insufficient = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("insufficient_scope"));
                if insufficient && !matches!(self.secret().await, Secret::Anonymous) {
                    let repository = scopes
                        .iter()
                        .find(|scope| scope.push)
                        .or(scopes.first())
                        .map(|scope| scope.repository.clone())
                        .unwrap_or_default();
                    return Err(self.refused(Error::Denied {
                        host: self.host().to_string(),
                        repository,
                    }));
                }
                return Err(self.unauthorized().await);
            }
            reauthenticated = true;
            self.reauthenticate(&response, scopes).await;
        }
    }

    /// Sends a request with a one-shot streaming body: no retry here (the body cannot be
    /// replayed); the caller's caller retries the whole blob from its source.
    pub(crate) async fn send_stream(
        &self,
        method: Method,
        url: &str,
        scopes: &[Scope],
        configure: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let authorization = if self.is_own_origin(url).await? {
            self.authorization(scopes).await?
        } else {
            None
        };
        let mut request = self.inner.http.request(method, url);
        if let Some(value) = &authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let response = configure(request)
            .send()
            .await
            .map_err(|e| self.request_error(&e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Most likely the token ran out during a long upload: a fresh one comes with the
            // retry.
            self.reauthenticate(&response, scopes).await;
            return Err(Error::Transfer {
                host: self.host().to_string(),
                detail: "authorization expired during the upload".into(),
            });
        }
        Ok(response)
    }

    /// Repeats a whole read whose body broke off: [`Registry::send`] retries only until the
    /// response head arrives, and a manifest or tag page is small enough to fetch again.
    pub(crate) async fn retry_reads<T, F, Fut>(&self, mut read: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let policy = self.inner.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match read().await {
                Err(error @ Error::Transfer { .. }) if attempt <= policy.retries => {
                    tracing::debug!(host = self.host(), %error, "reading again");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Runs a request with retries on connection errors, 408, 429 and 5xx.
    async fn execute(&self, build: &(dyn Fn() -> RequestBuilder + Sync)) -> Result<Response> {
        self.execute_until(build, PlainHttpSign::Certain)
            .await
            .map_err(|failure| failure.error)
    }

    /// [`Registry::execute`], giving up at once when a TLS handshake fails with a sign of plain
    /// HTTP as strong as `give_up_on`: asking again gets the same answer.
    async fn execute_until(
        &self,
        build: &(dyn Fn() -> RequestBuilder + Sync),
        give_up_on: PlainHttpSign,
    ) -> Result<Response, Failure> {
        let policy = self.inner.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last_try = attempt > policy.retries;
            match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    let transient = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    if !transient || last_try {
                        return Ok(response);
                    }
                    let wait = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry_after(v, RETRY_AFTER_CAP))
                        .unwrap_or_else(|| policy.delay(attempt));
                    tracing::debug!(host = self.host(), %status, ?wait, "retrying request");
                    tokio::time::sleep(wait).await;
                }
                Err(error) => {
                    let plain_http = plain_http_sign(&error);
                    let error = self.request_error(&error);
                    let settled = plain_http.is_some_and(|sign| sign >= give_up_on);
                    if !error.is_retryable() || last_try || settled {
                        return Err(Failure { error, plain_http });
                    }
                    tracing::debug!(host = self.host(), %error, "retrying request");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
            }
        }
    }

    /// Why a refusal happened when the password was withheld from the token service.
    fn withheld(&self) -> Option<Error> {
        let realm = self
            .inner
            .withheld_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(Error::CredentialsWithheld {
            host: self.host().to_string(),
            realm,
        })
    }

    /// `error`, a refusal, or the reason for it when the password was withheld.
    fn refused(&self, error: Error) -> Error {
        self.withheld().unwrap_or(error)
    }

    async fn unauthorized(&self) -> Error {
        if let Some(withheld) = self.withheld() {
            return withheld;
        }
        match self.secret().await {
            Secret::Anonymous => Error::AuthenticationRequired {
                host: self.host().to_string(),
            },
            _ => Error::Unauthorized {
                host: self.host().to_string(),
            },
        }
    }

    fn unreachable(&self, failure: NetworkFailure, detail: String) -> Error {
        Error::Unreachable {
            host: self.host().to_string(),
            failure,
            detail,
        }
    }

    pub(crate) fn transfer(&self, error: &reqwest::Error) -> Error {
        Error::Transfer {
            host: self.host().to_string(),
            detail: error_chain(error),
        }
    }

    /// Classifies a failed send: certificate problems, unreachable hosts, broken transfers.
    fn request_error(&self, error: &reqwest::Error) -> Error {
        let detail = error_chain(error);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            return Error::TlsVerification {
                host: self.host().to_string(),
                detail,
            };
        }
        if error.is_connect() || error.is_timeout() {
            let failure = if error.is_timeout() {
                NetworkFailure::TimedOut
            } else {
                NetworkFailure::of(error)
            };
            return self.unreachable(failure, detail);
        }
        Error::Transfer {
            host: self.host().to_string(),
            detail,
        }
    }

    /// The body of `response`, or `None` as soon as it announces or grows past `limit` bytes:
    /// whatever a peer sends, no more than `limit` is ever held. Reading stops there; the rest
    /// is never read (the connection is dropped with the response).
    pub(crate) async fn body_within(
        &self,
        mut response: Response,
        limit: usize,
    ) -> Result<Option<bytes::Bytes>> {
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Ok(None);
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transfer(&e))? {
            if body.len() + chunk.len() > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body.freeze()))
    }

    /// Turns an unexpected answer into an error, keeping a short piece of the body because
    /// registries explain themselves there. Only the first few KiB are read: an error body
    /// that never ends must not fill memory.
    pub(crate) async fn status_error(
        &self,
        mut response: Response,
        method: &str,
        path: &str,
    ) -> Error {
        let status = response.status().as_u16();
        let mut head = Vec::new();
        while head.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        head.truncate(ERROR_BODY_LIMIT);
        let body = String::from_utf8_lossy(&head);
        let body: String = body.trim().chars().take(300).collect();
        Error::Status {
            host: self.host().to_string(),
            status,
            method: method.to_string(),
            path: path.to_string(),
            body,
        }
    }

    /// Maps 403 and 404 to their own errors, the rest to [`Error::Status`].
    pub(crate) async fn unexpected(
        &self,
        response: Response,
        method: &str,
        repository: &str,
        what: impl FnOnce() -> String,
    ) -> Error {
        match response.status() {
            StatusCode::NOT_FOUND => Error::NotFound {
                host: self.host().to_string(),
                what: what(),
            },
            StatusCode::FORBIDDEN => self.refused(Error::Denied {
                host: self.host().to_string(),
                repository: repository.to_string(),
            }),
            _ => self.status_error(response, method, &what()).await,
        }
    }
}

/// A request that failed for good, with what its failure says about the server's scheme.
struct Failure {
    error: Error,
    plain_http: Option<PlainHttpSign>,
}

/// What a failed HTTPS connection says about the server: that it may speak plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PlainHttpSign {
    /// The TLS handshake was closed or reset: what some plain-HTTP servers do with a TLS hello,
    /// and what an HTTPS server having a bad moment does too.
    Possible,
    /// The server answered the TLS hello with something that is not TLS at all, such as the
    /// HTTP 400 that distribution, nginx and most HTTP servers send back.
    Certain,
}

fn plain_http_sign(error: &reqwest::Error) -> Option<PlainHttpSign> {
    if !error.is_connect() {
        return None;
    }
    let mut sign = None;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) =
            current.downcast_ref::<rustls::Error>()
        {
            return Some(PlainHttpSign::Certain);
        }
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) {
                    sign = Some(PlainHttpSign::Possible);
                }
                // The connectors wrap the handshake's error in io::Errors, whose `source()`
                // skips the error they wrap.
                io.get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static))
            }
            None => current.source(),
        }
    }
    sign
}

/// The error with all its causes, which is where hyper and rustls put the useful part.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use testkit::{CountingRelay, TestRegistry};

    use super::*;

    /// A registry written as cfg.yaml writes it: no scheme, the original tool's fallback on.
    fn open(address: &str, retry: RetryPolicy) -> Registry {
        Registry::new(RegistryOptions {
            address: address.to_string(),
            retry,
            http_fallback: true,
            ..RegistryOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn a_password_goes_to_a_token_service_over_https_or_on_the_registry_host() {
        let registry = open("registry.example:5000", RetryPolicy::default());
        for (realm, allowed) in [
            ("https://auth.elsewhere.example/token", true),
            ("http://registry.example:5001/token", true),
            ("http://REGISTRY.example/token", true),
            ("http://auth.elsewhere.example/token", false),
            ("http://registry.example.attacker.example/token", false),
            ("not a url", false),
        ] {
            assert_eq!(registry.may_receive_credentials(realm), allowed, "{realm}");
        }
    }

    #[tokio::test]
    async fn a_plain_http_registry_without_a_scheme_costs_one_tls_attempt_per_process() {
        let registry = TestRegistry::start();
        let relay = CountingRelay::start(&registry.host());
        // The default policy would retry a failed handshake four times, were it retried.
        let first = open(&relay.host(), RetryPolicy::default());
        let second = open(&relay.host(), RetryPolicy::default());
        first.check("team/app", false).await.unwrap();
        second.check("team/app", true).await.unwrap();
        assert_eq!(
            first.base_url().await.unwrap(),
            format!("http://{}", relay.host())
        );
        assert_eq!(
            second.base_url().await.unwrap(),
            format!("http://{}", relay.host())
        );
        assert_eq!(relay.tls_connections(), 1);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_the_answer_not_a_reason_to_try_http() {
        let registry = TestRegistry::start_tls();
        let relay = CountingRelay::start(&registry.host());
        let error = open(&relay.host(), RetryPolicy::default())
            .check("team/app", false)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::TlsVerification { .. }), "{error:?}");
        assert_eq!((relay.tls_connections(), relay.plain_connections()), (1, 0));
    }

    #[tokio::test]
    async fn an_https_address_of_a_plain_http_server_fails_without_retries() {
        let registry = TestRegistry::start();
        let relay = CountingRelay::start(&registry.host());
        let error = open(&format!("https://{}", relay.host()), RetryPolicy::default())
            .check("team/app", false)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("InvalidContentType"), "{error}");
        assert_eq!((relay.tls_connections(), relay.plain_connections()), (1, 0));
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_with_the_https_address() {
        let port = testkit::free_port();
        let error = open(
            &format!("127.0.0.1:{port}"),
            RetryPolicy {
                retries: 0,
                ..RetryPolicy::default()
            },
        )
        .check("team/app", false)
        .await
        .unwrap_err();
        let Error::Unreachable {
            detail, failure, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*failure, NetworkFailure::Refused);
        assert!(
            detail.contains(&format!("https://127.0.0.1:{port}/")),
            "{detail}"
        );
    }

    /// A server that hangs up on every connection, as some plain-HTTP servers do with a TLS
    /// hello: the handshake is not retried, plain HTTP is tried at once (and retried, because a
    /// hang-up in plain HTTP is a broken connection like any other).
    #[tokio::test]
    async fn a_handshake_cut_short_sends_the_probe_to_http_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(connection);
            }
        });
        let retry = RetryPolicy {
            retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let error = open(&address.to_string(), retry)
            .check("team/app", false)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("http://"), "{error}");
        // One handshake, then the first try over HTTP and its two retries.
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }
}
