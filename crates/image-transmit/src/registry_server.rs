//! The HTTP side of `image-transmit serve`: a read-only OCI distribution endpoint over one or
//! more bundles, so that air-gapped nodes pull straight from the jump host and skopeo or our
//! own `copy --from` read a bundle as if it were a registry. It only translates requests into
//! [`BundleReader`] calls; the bundle format stays the engine's business.
//!
//! Repository names contain slashes (`team/app`), which no router pattern can split from the
//! rest, so everything under `/v2/` goes to one handler that parses the path from its end
//! (`…/manifests/<reference>`, `…/blobs/<digest>`, `…/tags/list`), as distribution does.
//!
//! Digests are content addresses: a manifest or blob found by digest is served under any
//! repository the bundles know, like a pull-through mirror does. Names the bundles do not know
//! answer `NAME_UNKNOWN`, so a typo is told apart from a missing tag.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderName, LINK, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use engine::bundle::chain::BundleChain;
use engine::bundle::reader::BundleReader;
use engine::plan::{ListOptions, plan_line};
use engine::transport::{ImageSource, Manifest};
use registry::Digest;
use registry::reference::Target;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// What one bundle's meta says it can answer, worked out once at start.
struct Served {
    /// `(repository, tag or digest)` as the image keys name them.
    references: HashSet<(String, String)>,
    /// Top-level manifests by digest → a `(repository, reference)` whose key holds it. The
    /// original's bundles do not store these as entries, so a pull by digest (which a client
    /// does after resolving a tag) is answered through the key.
    tops: HashMap<Digest, (String, String)>,
    /// The platform manifests of indexes.
    children: HashSet<Digest>,
}

/// Every served bundle, read as one chain (as an increment is read with its bases), and the
/// names each holds, in the chain's order.
pub(crate) struct Catalog {
    chain: BundleChain,
    bundles: Vec<Served>,
    /// Repository → its tags, over all bundles; a repository saved only by digest has none.
    repositories: BTreeMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// The chain's bundles in lookup order: a tag held by several is answered by the first, a
    /// blob by the first that carries it.
    pub(crate) fn new(chain: BundleChain) -> Catalog {
        let mut repositories: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let bundles = chain
            .bundles()
            .iter()
            .map(|reader| {
                let mut references = HashSet::new();
                let mut tops = HashMap::new();
                for (key, text) in &reader.meta().manifests {
                    // A key the planner cannot read cannot be asked for by name either; the
                    // reader skips it the same way.
                    let Ok(pair) = plan_line(key, &ListOptions::default()) else {
                        continue;
                    };
                    let repository = pair.source.repository;
                    let tags = repositories.entry(repository.clone()).or_default();
                    if let Target::Tag(tag) = &pair.source.reference {
                        tags.insert(tag.clone());
                    }
                    let reference = (repository, pair.source.reference.to_string());
                    tops.entry(Digest::of(text.as_bytes()))
                        .or_insert_with(|| reference.clone());
                    references.insert(reference);
                }
                let children = reader
                    .meta()
                    .child_manifests
                    .keys()
                    .filter_map(|digest| digest.parse().ok())
                    .collect();
                Served {
                    references,
                    tops,
                    children,
                }
            })
            .collect();
        Catalog {
            chain,
            bundles,
            repositories,
        }
    }

    fn knows(&self, repository: &str) -> bool {
        self.repositories.contains_key(repository)
    }

    /// The manifest `reference` names, from the first bundle that has it. `Ok(None)` when no
    /// bundle has it; `Err` when one has it but cannot read it (a damaged part).
    async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> engine::Result<Option<Manifest>> {
        let digest = reference.parse::<Digest>().ok();
        for (reader, bundle) in self.chain.bundles().iter().zip(&self.bundles) {
            // Only names the meta lists as manifests are asked for: the reader would also hand
            // out a config blob asked for by digest, which JSON sniffing takes for a manifest.
            let (repository, reference) = match &digest {
                Some(digest) => match bundle.tops.get(digest) {
                    Some((repository, reference)) => (repository.as_str(), reference.as_str()),
                    None if bundle.children.contains(digest) => (repository, digest.as_str()),
                    None => continue,
                },
                None if bundle
                    .references
                    .contains(&(repository.to_string(), reference.to_string())) =>
                {
                    (repository, reference)
                }
                None => continue,
            };
            return reader.manifest(repository, reference).await.map(Some);
        }
        Ok(None)
    }

    /// The first bundle whose data files hold the blob, with the blob's size.
    fn blob(&self, digest: &Digest) -> Option<(&BundleReader, u64)> {
        let reader = self.chain.carrier_of(digest)?;
        reader.blob_size(digest).map(|size| (reader, size))
    }
}

/// Serves `catalog` on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub(crate) async fn serve(
    listener: TcpListener,
    catalog: Catalog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = crate::http_server::Limits {
        // Pull clients open a few connections each (containerd: 3 per image by default).
        connections: 128,
        header_timeout: std::time::Duration::from_secs(10),
    };
    crate::http_server::serve(listener, router(Arc::new(catalog)), limits, shutdown).await
}

fn router(catalog: Arc<Catalog>) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(v2))
        .fallback(unknown_endpoint)
        .layer(middleware::from_fn(mark_and_log))
        .with_state(catalog)
}

/// Every answer carries the API version header (clients probe `/v2/` for it, and some check
/// it on errors too), and every request is logged for `RUST_LOG=debug`.
async fn mark_and_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let range = request.headers().get(RANGE).cloned();
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    tracing::debug!(
        %method,
        %uri,
        range = ?range,
        status = response.status().as_u16(),
        "serve request"
    );
    response
}

async fn base(method: Method) -> Response {
    if !is_read(&method) {
        return unsupported();
    }
    json_response(StatusCode::OK, &method, &json!({}))
}

async fn unknown_endpoint(method: Method) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &method,
        "UNSUPPORTED",
        "unknown endpoint",
    )
}

/// What a path under `/v2/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum ApiPath<'a> {
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    /// `…/blobs/uploads/…`: pushing, which a read-only endpoint refuses.
    Upload,
    Unknown,
}

/// Parses the part of a path after `/v2/` from its end, since the name may hold slashes.
fn parse_api_path(rest: &str) -> ApiPath<'_> {
    if rest == "_catalog" {
        return ApiPath::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return ApiPath::Tags(name);
    }
    if rest.contains("/blobs/uploads") {
        return ApiPath::Upload;
    }
    let Some((head, reference)) = rest.rsplit_once('/') else {
        return ApiPath::Unknown;
    };
    let Some((name, kind)) = head.rsplit_once('/') else {
        return ApiPath::Unknown;
    };
    if name.is_empty() || reference.is_empty() {
        return ApiPath::Unknown;
    }
    match kind {
        "manifests" => ApiPath::Manifest(name, reference),
        "blobs" => ApiPath::Blob(name, reference),
        _ => ApiPath::Unknown,
    }
}

async fn v2(State(catalog): State<Arc<Catalog>>, method: Method, request: Request) -> Response {
    let uri = request.uri();
    let rest = uri.path().strip_prefix("/v2/").unwrap_or_default();
    let endpoint = parse_api_path(rest);
    if !is_read(&method) || endpoint == ApiPath::Upload {
        return unsupported();
    }
    match endpoint {
        ApiPath::Catalog => match Query::<Page>::try_from_uri(uri) {
            Ok(Query(page)) => list(
                &method,
                &page,
                catalog.repositories.keys(),
                "/v2/_catalog",
                |items| json!({ "repositories": items }),
            ),
            Err(_) => bad_pagination(&method),
        },
        ApiPath::Tags(name) => {
            let Some(tags) = catalog.repositories.get(name) else {
                return name_unknown(&method, name);
            };
            match Query::<Page>::try_from_uri(uri) {
                Ok(Query(page)) => list(
                    &method,
                    &page,
                    tags.iter(),
                    &format!("/v2/{name}/tags/list"),
                    |items| json!({ "name": name, "tags": items }),
                ),
                Err(_) => bad_pagination(&method),
            }
        }
        ApiPath::Manifest(name, reference) => manifest(&catalog, &method, name, reference).await,
        ApiPath::Blob(name, digest) => {
            blob(&catalog, &method, request.headers(), name, digest).await
        }
        ApiPath::Upload | ApiPath::Unknown => unknown_endpoint(method).await,
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

async fn manifest(catalog: &Catalog, method: &Method, name: &str, reference: &str) -> Response {
    if !catalog.knows(name) {
        return name_unknown(method, name);
    }
    if reference.contains(':') && reference.parse::<Digest>().is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            method,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    match catalog.manifest(name, reference).await {
        Ok(Some(manifest)) => {
            let builder = Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, manifest.media_type.as_str())
                .header(CONTENT_DIGEST, manifest.digest.as_str())
                .header(CONTENT_LENGTH, manifest.bytes.len());
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(manifest.bytes)
            };
            finish(builder, body)
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            method,
            "MANIFEST_UNKNOWN",
            &format!("manifest unknown: {name}:{reference}"),
        ),
        Err(failure) => server_error(method, &format!("{name}:{reference}"), &failure),
    }
}

async fn blob(
    catalog: &Catalog,
    method: &Method,
    headers: &HeaderMap,
    name: &str,
    digest: &str,
) -> Response {
    if !catalog.knows(name) {
        return name_unknown(method, name);
    }
    let Ok(digest) = digest.parse::<Digest>() else {
        return error(
            StatusCode::BAD_REQUEST,
            method,
            "DIGEST_INVALID",
            &format!("invalid digest {digest}"),
        );
    };
    let Some((reader, size)) = catalog.blob(&digest) else {
        return error(
            StatusCode::NOT_FOUND,
            method,
            "BLOB_UNKNOWN",
            &format!("blob unknown to registry: {digest}"),
        );
    };
    let range = headers.get(RANGE).and_then(|value| value.to_str().ok());
    let (status, start, length) = match parse_range(range, size) {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            let mut response = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                method,
                "RANGE_INVALID",
                &format!("the blob has {size} bytes"),
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_DIGEST, digest.as_str())
        .header(ACCEPT_RANGES, "bytes")
        .header(CONTENT_LENGTH, length);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + length - 1),
        );
    }
    if method == Method::HEAD {
        return finish(builder, Body::empty());
    }
    match reader.blob_range(&digest, start, length).await {
        Ok(stream) => finish(builder, Body::from_stream(stream)),
        Err(failure) => server_error(method, digest.as_str(), &failure),
    }
}

/// What a `Range` header asks of a blob of a known size.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// No header, or one this server may ignore (another unit, several ranges, bad syntax):
    /// RFC 9110 lets a server answer those with the whole content.
    Whole,
    /// Bytes `start..=end`, inside the blob.
    Part { start: u64, end: u64 },
    /// A single range that starts past the end: 416.
    Unsatisfiable,
}

fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-N`: the last N bytes.
        return match last.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(_) if size == 0 => ByteRange::Unsatisfiable,
            Ok(suffix) => ByteRange::Part {
                start: size.saturating_sub(suffix),
                end: size - 1,
            },
            Err(_) => ByteRange::Whole,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return ByteRange::Whole;
    };
    let end = if last.is_empty() {
        None
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => Some(end),
            _ => return ByteRange::Whole,
        }
    };
    if start >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part {
        start,
        end: end.map_or(size - 1, |end| end.min(size - 1)),
    }
}

/// `n` and `last` of a listing. Kept as text so a bad number gets the distribution error
/// rather than the extractor's plain-text rejection.
#[derive(Debug, Default, Deserialize)]
struct Page {
    n: Option<String>,
    last: Option<String>,
}

/// A sorted listing, cut after `last` and to `n` entries, with a `Link` to the next page
/// when entries remain, as the distribution spec pages tags and the catalog.
fn list<'a>(
    method: &Method,
    page: &Page,
    items: impl Iterator<Item = &'a String>,
    path: &str,
    shape: impl FnOnce(Vec<&'a String>) -> serde_json::Value,
) -> Response {
    let limit = match page.n.as_deref().map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return bad_pagination(method),
    };
    let mut remaining = items
        .filter(|item| {
            page.last
                .as_ref()
                .is_none_or(|last| item.as_str() > last.as_str())
        })
        .peekable();
    let mut chosen = Vec::new();
    while limit.is_none_or(|n| chosen.len() < n) {
        match remaining.next() {
            Some(item) => chosen.push(item),
            None => break,
        }
    }
    let next = match (limit, chosen.last()) {
        (Some(n), Some(last)) if remaining.peek().is_some() => {
            Some(format!("<{path}?n={n}&last={last}>; rel=\"next\""))
        }
        _ => None,
    };
    let mut response = json_response(StatusCode::OK, method, &shape(chosen));
    if let Some(link) = next.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert(LINK, link);
    }
    response
}

fn json_response(status: StatusCode, method: &Method, value: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(CONTENT_LENGTH, bytes.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    finish(builder, body)
}

/// An error in the distribution shape: `{"errors":[{"code","message","detail"}]}`.
fn error(status: StatusCode, method: &Method, code: &str, message: &str) -> Response {
    json_response(
        status,
        method,
        &json!({ "errors": [{ "code": code, "message": message, "detail": {} }] }),
    )
}

fn name_unknown(method: &Method, name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        method,
        "NAME_UNKNOWN",
        &format!("repository name not known to registry: {name}"),
    )
}

fn bad_pagination(method: &Method) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        method,
        "PAGINATION_NUMBER_INVALID",
        "invalid number of results requested",
    )
}

fn unsupported() -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &Method::GET,
        "UNSUPPORTED",
        "the operation is unsupported: this registry serves bundles read-only",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// A bundle that lists something but cannot produce it is damaged: the client learns that
/// the server failed (not that the image is missing), and the operator sees why in the log.
fn server_error(method: &Method, what: &str, failure: &engine::Error) -> Response {
    tracing::warn!("cannot serve {what}: {failure}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        method,
        "UNKNOWN",
        &format!("cannot read {what} from the bundle: {failure}"),
    )
}

/// Builds a response; the parts given are all valid header values, so failure is a bug here
/// and the client gets a bare 500 rather than the server stopping.
fn finish(builder: axum::http::response::Builder, body: Body) -> Response {
    builder.body(body).unwrap_or_else(|failure| {
        tracing::warn!("cannot build a response: {failure}");
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed_from_their_end() {
        assert_eq!(parse_api_path("_catalog"), ApiPath::Catalog);
        assert_eq!(
            parse_api_path("team/app/tags/list"),
            ApiPath::Tags("team/app")
        );
        assert_eq!(
            parse_api_path("a/b/c/manifests/1.0"),
            ApiPath::Manifest("a/b/c", "1.0")
        );
        assert_eq!(
            parse_api_path("team/manifests/manifests/sha256:00"),
            ApiPath::Manifest("team/manifests", "sha256:00")
        );
        assert_eq!(
            parse_api_path("app/blobs/sha256:ab"),
            ApiPath::Blob("app", "sha256:ab")
        );
        assert_eq!(parse_api_path("app/blobs/uploads/"), ApiPath::Upload);
        assert_eq!(parse_api_path("app/blobs/uploads/some-id"), ApiPath::Upload);
        assert_eq!(parse_api_path("manifests/1"), ApiPath::Unknown);
        assert_eq!(parse_api_path("app/other/1"), ApiPath::Unknown);
        assert_eq!(parse_api_path("app/manifests/"), ApiPath::Unknown);
    }

    #[test]
    fn ranges() {
        let part = |start, end| ByteRange::Part { start, end };
        assert_eq!(parse_range(None, 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), part(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), part(4, 9));
        assert_eq!(parse_range(Some("bytes=4-100"), 10), part(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), part(0, 9));
        assert_eq!(parse_range(Some("bytes=9-9"), 10), part(9, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), ByteRange::Whole);
    }
}
