//! Authentication: the `WWW-Authenticate` challenge, credentials, and bearer tokens per scope.
//!
//! Credentials come from the configuration first, then from Docker's `config.json`
//! (`DOCKER_CONFIG`, `auths`, `credHelpers`, `credsStore`). Tokens are cached per scope set and
//! refreshed before they expire or when a request is answered 401 mid-job.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::Mutex;

/// A user name and password. Debug output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// What a registry can be logged in with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    Anonymous,
    Basic(Credentials),
    /// An OAuth2 refresh token from `docker login` against an identity provider.
    IdentityToken(String),
}

impl Secret {
    /// Looks the registry up in Docker's config.json and its credential helpers.
    pub(crate) async fn from_docker_config(credential_key: String) -> Secret {
        let lookup =
            tokio::task::spawn_blocking(move || docker_credential::get_credential(&credential_key))
                .await;
        match lookup {
            Ok(Ok(docker_credential::DockerCredential::UsernamePassword(username, password))) => {
                Secret::Basic(Credentials { username, password })
            }
            Ok(Ok(docker_credential::DockerCredential::IdentityToken(token))) => {
                Secret::IdentityToken(token)
            }
            Ok(Err(error)) => {
                // Usually just "no credential configured"; a broken helper or config.json shows
                // up here too, and the user sees only "requires a login" without this.
                tracing::debug!(%error, "no credentials from Docker's config");
                Secret::Anonymous
            }
            Err(error) => {
                tracing::warn!(%error, "credential lookup failed");
                Secret::Anonymous
            }
        }
    }

    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Secret::Basic(c) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )),
            _ => None,
        }
    }
}

/// The authentication scheme a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value such as
    /// `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    }
}

fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key, value.to_string());
        rest = after.trim_start_matches([',', ' ']);
    }
    params
}

/// One `repository:<name>:<actions>` scope of a token request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub repository: String,
    pub push: bool,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: false,
        }
    }

    pub fn push(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: true,
        }
    }

    fn as_param(&self) -> String {
        let actions = if self.push { "pull,push" } else { "pull" };
        format!("repository:{}:{actions}", self.repository)
    }
}

/// Cached bearer tokens, keyed by the scope set they were issued for.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// Tokens are renewed this long before the registry says they expire, so a request never
/// starts with a token that runs out on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(20);

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

pub(crate) fn scope_key(scopes: &[Scope]) -> String {
    let mut params: Vec<String> = scopes.iter().map(Scope::as_param).collect();
    params.sort();
    params.dedup();
    params.join(" ")
}

impl TokenCache {
    pub(crate) async fn get(&self, key: &str) -> Option<String> {
        let tokens = self.tokens.lock().await;
        tokens
            .get(key)
            .filter(|(_, expires)| Instant::now() + EXPIRY_MARGIN < *expires)
            .map(|(token, _)| token.clone())
    }

    pub(crate) async fn forget(&self, key: &str) {
        self.tokens.lock().await.remove(key);
    }

    pub(crate) async fn store(&self, key: String, token: String, lifetime: Duration) {
        self.tokens
            .lock()
            .await
            .insert(key, (token, Instant::now() + lifetime));
    }
}

/// What the token endpoint said: a token and how long it lives.
pub(crate) struct IssuedToken {
    pub(crate) token: String,
    pub(crate) lifetime: Duration,
}

/// Builds the token request for a challenge. The caller sends it with its retry policy.
pub(crate) fn token_request(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[Scope],
    secret: &Secret,
) -> reqwest::RequestBuilder {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(service) = service {
        query.push(("service", service.to_string()));
    }
    match secret {
        Secret::IdentityToken(refresh_token) => {
            // The OAuth2 form takes one space-separated scope field.
            let mut form = query;
            let scope: Vec<String> = scopes.iter().map(Scope::as_param).collect();
            form.push(("scope", scope.join(" ")));
            form.push(("grant_type", "refresh_token".to_string()));
            form.push(("client_id", "image-transmit".to_string()));
            form.push(("refresh_token", refresh_token.clone()));
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", url_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            http.post(realm)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        }
        _ => {
            for scope in scopes {
                query.push(("scope", scope.as_param()));
            }
            let mut url = realm.to_string();
            for (index, (key, value)) in query.iter().enumerate() {
                let separator = if index == 0 && !realm.contains('?') {
                    '?'
                } else {
                    '&'
                };
                url.push_str(&format!("{separator}{key}={}", url_encode(value)));
            }
            let mut request = http.get(url);
            if let Some(header) = secret.basic_header() {
                request = request.header("authorization", header);
            }
            request
        }
    }
}

pub(crate) fn parse_token_response(body: &[u8]) -> Option<IssuedToken> {
    let response: TokenResponse = serde_json::from_slice(body).ok()?;
    let token = response.token.or(response.access_token)?;
    // The distribution spec says a token without expires_in lives 60 seconds.
    let lifetime = Duration::from_secs(response.expires_in.unwrap_or(60).max(60));
    Some(IssuedToken { token, lifetime })
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn scope_key_is_order_independent() {
        let a = scope_key(&[Scope::push("dst"), Scope::pull("src")]);
        let b = scope_key(&[Scope::pull("src"), Scope::push("dst")]);
        assert_eq!(a, b);
        assert_eq!(a, "repository:dst:pull,push repository:src:pull");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let credentials = Credentials {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{credentials:?}").contains("s3cret"));
    }

    #[test]
    fn token_response_accepts_both_field_names() {
        let issued = parse_token_response(br#"{"access_token":"t","expires_in":300}"#).unwrap();
        assert_eq!(issued.token, "t");
        assert_eq!(issued.lifetime, Duration::from_secs(300));
        assert!(parse_token_response(br#"{"nothing":1}"#).is_none());
    }
}
