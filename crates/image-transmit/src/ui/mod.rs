//! The local web UI (`image-transmit ui`), in place of the original's Windows GUI, made for the
//! person at a jump host who does not know Docker: three tasks on screens of their own (copy
//! between registries, make an offline package, import one into a registry or the local Docker
//! / containerd), plus watch, past jobs and settings, with the original's words on the buttons.
//!
//! It listens on loopback and answers only requests that carry the random token printed with
//! its address (`?token=` or the `x-token` header) and name a loopback host, so another local
//! user or a web page cannot drive it. Registry passwords go from the page to the server, never
//! back. The page and its script are compiled into the binary; its words come from the same
//! catalogs as the command line (`ui.*` keys), and each request's `x-lang` header picks the
//! language of the sentences the server sends. Jobs run as the command line does, in a child
//! process (`jobs`) that speaks the page's language.

mod bundles;
mod jobs;
pub(crate) mod registries;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use engine::plan;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::commands::{JobSettings, pipeline};
use crate::config::{Config, RegistryEntry, Side};
use crate::messages::{explain, explain_plan};

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Where the UI's own files go: job reports and lists (never passwords).
const UI_DIR: &str = "data/ui";

/// Everything the handlers share.
pub(crate) struct UiState {
    token: String,
    /// cfg.yaml as found at start, or as first written by a registry kept from the page.
    config_path: Mutex<Option<PathBuf>>,
    /// cfg.yaml as read at start, read again when the page keeps a registry in it.
    config: RwLock<Config>,
    /// Registries added on the page for this run only, as (side, entry).
    added: Mutex<Vec<(Side, RegistryEntry)>>,
    jobs: Mutex<Vec<Arc<jobs::Job>>>,
    /// Jobs of earlier runs of the UI, from the reports they left in [`UI_DIR`], oldest first.
    earlier: Vec<Value>,
    language: String,
}

impl UiState {
    pub(crate) fn new(config_path: Option<PathBuf>, config: Config, language: String) -> UiState {
        UiState {
            token: random_token(),
            config_path: Mutex::new(config_path),
            config: RwLock::new(config),
            added: Mutex::new(Vec::new()),
            jobs: Mutex::new(Vec::new()),
            earlier: earlier_jobs(Path::new(UI_DIR)),
            language,
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The configuration as it stands (cfg.yaml, with what the page kept in it).
    fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every registry of a side: cfg.yaml's, then those held for this run.
    fn entries(&self, side: Side) -> Vec<RegistryEntry> {
        let config = self.config();
        let configured = match side {
            Side::Source => config.source,
            Side::Target => config.target,
        };
        let added = self.added.lock().unwrap_or_else(|p| p.into_inner());
        configured
            .into_iter()
            .chain(
                added
                    .iter()
                    .filter(|(s, _)| *s == side)
                    .map(|(_, entry)| entry.clone()),
            )
            .collect()
    }

    fn entry(&self, side: Side, name: &str) -> Option<RegistryEntry> {
        self.entries(side)
            .into_iter()
            .find(|entry| entry.name == name)
    }

    fn job(&self, id: u64) -> Option<Arc<jobs::Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|job| job.id == id)
            .cloned()
    }
}

/// The reports earlier runs of the UI left behind, as job summaries numbered from 1, oldest
/// first, so the history survives a restart.
fn earlier_jobs(directory: &Path) -> Vec<Value> {
    let Ok(listing) = fs_err::read_dir(directory) else {
        return Vec::new();
    };
    let mut reports: Vec<(std::time::SystemTime, Value)> = listing
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|entry| {
            let when = entry.metadata().and_then(|m| m.modified()).ok()?;
            let report = serde_json::from_slice::<Value>(&fs_err::read(entry.path()).ok()?).ok()?;
            Some((when, report))
        })
        .collect();
    reports.sort_by_key(|(when, _)| *when);
    reports
        .into_iter()
        .enumerate()
        .map(|(index, (when, report))| {
            let mode = match report["command"].as_str() {
                Some("copy") => "transmit",
                Some(other) => other,
                None => "transmit",
            }
            .to_string();
            let summary = &report["summary"];
            let troubled = summary["failed"].as_u64().unwrap_or(0)
                + summary["invalid"].as_u64().unwrap_or(0)
                > 0
                || summary["cancelled"].as_bool().unwrap_or(false);
            json!({
                "id": index + 1,
                "mode": mode,
                "started": chrono::DateTime::<chrono::Utc>::from(when).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "running": false,
                "outcome": {"exit": u8::from(troubled), "report": report},
            })
        })
        .collect()
}

/// 32 hex digits from the operating system's randomness (through the hasher's random keys).
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut token = String::new();
    for round in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(round ^ fastrand::u64(..));
        token.push_str(&format!("{:016x}", hasher.finish()));
    }
    token
}

pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<UiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = crate::http_server::Limits {
        // One browser opens six connections per host; a few tabs fit.
        connections: 32,
        header_timeout: std::time::Duration::from_secs(10),
    };
    crate::http_server::serve(listener, router(state), limits, shutdown).await
}

fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/state", get(ui_state))
        .route("/api/i18n", get(catalog))
        .route("/api/registries", post(registries::add))
        .route("/api/registries/test", post(registries::test))
        .route("/api/verify", post(verify_list))
        .route("/api/jobs", post(start_job))
        .route("/api/jobs/{id}", get(job_details))
        .route("/api/jobs/{id}/events", get(job_events))
        .route("/api/jobs/{id}/stop", post(stop_job))
        .route("/api/jobs/{id}/report", get(job_report))
        .route("/api/browse", get(bundles::browse))
        .route("/api/bundle", get(bundles::bundle))
        .route("/api/bundle/check", post(bundles::check_bundle))
        .route("/api/bundle/plan", post(bundles::plan_upload))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Refuses any request without the token or addressed to a name other than a loopback one
/// (a page elsewhere that made its own name resolve to 127.0.0.1 must not reach the UI even
/// with a leaked token), before it reaches a handler. Sets the language of the server's
/// sentences from the page's `x-lang` header.
async fn require_token(
    State(state): State<Arc<UiState>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = query.token.or_else(|| {
        headers
            .get("x-token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    });
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    // A page elsewhere cannot make this one act: a state-changing request from a browser
    // names its page's origin, which must be a loopback one too.
    let foreign_origin = request.method() != axum::http::Method::GET
        && headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|origin| !is_loopback_origin(origin));
    if !host.is_some_and(is_loopback_host) || foreign_origin {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            rust_i18n::t!("ui.not_loopback_host", locale = state.language.as_str()).to_string(),
        )
            .into_response();
    }
    if given.as_deref() != Some(state.token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            rust_i18n::t!("ui.unauthorized", locale = state.language.as_str()).to_string(),
        )
            .into_response();
    }
    if let Some(language) = headers.get("x-lang").and_then(|value| value.to_str().ok()) {
        // One person drives one page: the process-wide locale is theirs.
        rust_i18n::set_locale(crate::i18n::normalize(language));
    }
    next.run(request).await
}

/// `http://127.0.0.1:PORT` and the like; `null` (a sandboxed or file page) is not.
fn is_loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(is_loopback_host)
}

/// `127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT` and the like.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn page(State(state): State<Arc<UiState>>) -> Html<String> {
    Html(
        PAGE.replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT)
            .replace("{{LANG}}", &state.language),
    )
}

/// Meta files under `data/`, newest first: the bundles this machine made, offered as bases of
/// an incremental save.
fn meta_files() -> Vec<String> {
    fn walk(directory: &Path, found: &mut Vec<PathBuf>) {
        let Ok(listing) = fs_err::read_dir(directory) else {
            return;
        };
        for entry in listing.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().ends_with("_meta.yaml"))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("data"), &mut found);
    found.sort();
    found.reverse();
    found
        .into_iter()
        .map(|path| path.display().to_string())
        .collect()
}

/// A registry as the page may see it: no password, only whether there is one.
fn registry_view(side: Side, entry: &RegistryEntry, kept: bool) -> Value {
    json!({
        "side": side,
        "name": entry.name,
        "address": entry.registry,
        "user": entry.user,
        "has_password": entry.password.is_some(),
        "repository": entry.repository,
        "skiptlsverify": entry.skiptlsverify,
        "kept": kept,
    })
}

async fn ui_state(State(state): State<Arc<UiState>>) -> Json<Value> {
    let config = state.config();
    let names = |side| -> Vec<String> {
        state
            .entries(side)
            .into_iter()
            .map(|entry| entry.name)
            .collect()
    };
    let mut registries: Vec<Value> = Vec::new();
    for (side, list) in [
        (Side::Source, &config.source),
        (Side::Target, &config.target),
    ] {
        registries.extend(list.iter().map(|entry| registry_view(side, entry, true)));
    }
    registries.extend(
        state
            .added
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(side, entry)| registry_view(*side, entry, false)),
    );
    let jobs: Vec<Value> = state
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .rev()
        .map(|job| job.summary())
        .chain(state.earlier.iter().rev().cloned())
        .collect();
    let config_path = state
        .config_path
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Json(json!({
        "sources": names(Side::Source),
        "targets": names(Side::Target),
        "registries": registries,
        "config_path": config_path.map(|path| path.display().to_string()),
        "maxconn": config.maxconn,
        "retries": config.retries,
        "singlefile": config.singlefile,
        "cache": config.cache.is_some(),
        "language": state.language,
        // Only a language cfg.yaml sets outranks the browser's.
        "configured_language": config.lang.as_deref().map(crate::i18n::normalize),
        "metas": meta_files(),
        "jobs": jobs,
    }))
}

#[derive(Deserialize)]
struct LanguageQuery {
    lang: Option<String>,
}

/// The page's words in one language, from the CLI's catalogs.
async fn catalog(
    State(state): State<Arc<UiState>>,
    Query(query): Query<LanguageQuery>,
) -> Json<BTreeMap<String, String>> {
    let language = crate::i18n::normalize(query.lang.as_deref().unwrap_or(&state.language));
    // The English catalog has every key (a unit test keeps the catalogs' keys equal).
    let keys = crate::_rust_i18n_backend()
        .messages_for_locale(crate::i18n::ENGLISH)
        .unwrap_or_default();
    let words = keys
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("ui.") || key.starts_with("status."))
        .map(|key| {
            let text = rust_i18n::t!(key.as_ref(), locale = language).to_string();
            (key.into_owned(), text)
        })
        .collect();
    Json(words)
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
struct VerifyRequest {
    source: String,
    target: String,
    list: String,
}

/// The original's Verify (the source → target mapping of every line), plus what it never did:
/// whether each source image exists. The same planning and checks as the job itself
/// (`copy --dry-run`), so what Verify shows is what Start will do.
async fn verify_list(
    State(state): State<Arc<UiState>>,
    Json(request): Json<VerifyRequest>,
) -> Response {
    if state.entry(Side::Source, &request.source).is_none()
        || state.entry(Side::Target, &request.target).is_none()
    {
        return bad_request(rust_i18n::t!("ui.pick_registries").to_string());
    }
    let lines = match plan::parse_list(&request.list) {
        Ok(lines) => lines,
        Err(error) => return bad_request(explain_plan(&error)),
    };
    let config = state.config();
    let mut job = pipeline::JobRequest::new(
        "copy",
        engine::transport::Location::Registry(request.source.clone()),
        engine::transport::Location::Registry(request.target.clone()),
    );
    job.images = lines;
    let settings = JobSettings::new(&config, &Default::default());
    let prepared = match pipeline::prepare(&job, &config, &settings).await {
        Ok(prepared) => prepared,
        Err(error) => return bad_request(error.to_string()),
    };
    let checks: Vec<Value> = pipeline::look_up(&prepared)
        .await
        .into_iter()
        .map(|image| {
            let (exists, error) = match image.found {
                Ok(_) => (true, None),
                Err(reason) => (false, Some(reason)),
            };
            json!({
                "line": image.line,
                "source": image.source,
                "target": image.target,
                "exists": exists,
                "unchanged": image.unchanged,
                "error": error,
            })
        })
        .collect();
    let invalid: Vec<Value> = prepared
        .invalid
        .iter()
        .map(|line| json!({"line": line.line, "error": explain(&engine::Error::from(line.reason.clone()))}))
        .collect();
    Json(json!({"pairs": checks, "invalid": invalid})).into_response()
}

#[derive(Deserialize)]
struct JobRequest {
    mode: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
    /// The image list of a transmit, save or watch.
    #[serde(default)]
    list: String,
    /// The images of an upload or load to take from its bundle (a retry of the failed ones);
    /// empty means every image of the bundle. A list box is never used for these.
    #[serde(default)]
    images: Vec<String>,
    maxconn: Option<usize>,
    retries: Option<u32>,
    #[serde(default)]
    incremental_from: Vec<String>,
    #[serde(default)]
    single_file: bool,
    #[serde(default)]
    meta: String,
    /// `docker` or `containerd`, for a load.
    #[serde(default)]
    engine: String,
    #[serde(default)]
    language: String,
}

/// Starts a job, one at a time as in the original's GUI (two at once would share threads and
/// the status line).
async fn start_job(State(state): State<Arc<UiState>>, Json(request): Json<JobRequest>) -> Response {
    if state
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|job| job.is_running())
    {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": rust_i18n::t!("ui.job_running").to_string()})),
        )
            .into_response();
    }
    let directory = PathBuf::from(UI_DIR);
    if let Err(error) = fs_err::create_dir_all(&directory) {
        return bad_request(error.to_string());
    }
    let id = {
        let jobs = state.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.last()
            .map_or(state.earlier.len() as u64 + 1, |job| job.id + 1)
    };
    let arguments = match job_arguments(&state, &request, &directory, id) {
        Ok(arguments) => arguments,
        Err(message) => return bad_request(message),
    };
    let report = directory.join(format!("job-{id}-{}.json", std::process::id()));
    let environment: Vec<(&str, String)> = registries::session_environment(&state)
        .map(|value| (registries::SESSION_REGISTRIES, value))
        .into_iter()
        .collect();
    match jobs::start(id, &request.mode, arguments, &environment, report) {
        Ok(job) => {
            state
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(job);
            Json(json!({"id": id})).into_response()
        }
        Err(error) => bad_request(error.to_string()),
    }
}

/// The command line of a job, as a user would type it.
fn job_arguments(
    state: &UiState,
    request: &JobRequest,
    directory: &Path,
    id: u64,
) -> Result<Vec<String>, String> {
    let mut arguments = Vec::new();
    if let Some(path) = state
        .config_path
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        arguments.extend(["--config".to_string(), path.display().to_string()]);
    }
    let language = if request.language.is_empty() {
        state.language.clone()
    } else {
        crate::i18n::normalize(&request.language).to_string()
    };
    arguments.extend(["--lang".to_string(), language]);
    let list_file = |text: &str| -> Result<String, String> {
        let list = directory.join(format!("job-{id}-{}.lst", std::process::id()));
        fs_err::write(&list, text).map_err(|e| e.to_string())?;
        Ok(list.display().to_string())
    };
    let needs = |name: &str, side| {
        if state.entry(side, name).is_some() {
            Ok(name.to_string())
        } else {
            Err(rust_i18n::t!("ui.pick_registries").to_string())
        }
    };
    let needs_meta = || {
        if request.meta.is_empty() {
            Err(rust_i18n::t!("ui.pick_meta").to_string())
        } else {
            Ok(request.meta.clone())
        }
    };
    match request.mode.as_str() {
        "transmit" | "watch" => {
            let command = if request.mode == "transmit" {
                "copy"
            } else {
                "watch"
            };
            arguments.extend([
                command.to_string(),
                "--from".to_string(),
                needs(&request.source, Side::Source)?,
                "--to".to_string(),
                needs(&request.target, Side::Target)?,
                "--list".to_string(),
                list_file(&request.list)?,
            ]);
        }
        "save" => {
            arguments.extend([
                "save".to_string(),
                "--from".to_string(),
                needs(&request.source, Side::Source)?,
                "--list".to_string(),
                list_file(&request.list)?,
            ]);
            for base in &request.incremental_from {
                arguments.extend(["--incremental-from".to_string(), base.clone()]);
            }
            if request.single_file {
                arguments.push("--single-file".to_string());
            }
        }
        "upload" => {
            arguments.extend([
                "upload".to_string(),
                "--to".to_string(),
                needs(&request.target, Side::Target)?,
                needs_meta()?,
            ]);
        }
        "load" => {
            let engine = match request.engine.as_str() {
                "containerd" => "containerd",
                _ => "docker",
            };
            arguments.extend([
                "load".to_string(),
                "--to".to_string(),
                engine.to_string(),
                needs_meta()?,
            ]);
        }
        other => return Err(format!("unknown mode {other}")),
    }
    if matches!(request.mode.as_str(), "upload" | "load") && !request.images.is_empty() {
        arguments.extend(["--list".to_string(), list_file(&request.images.join("\n"))?]);
    }
    if let Some(maxconn) = request.maxconn.filter(|n| *n > 0) {
        arguments.extend(["--maxconn".to_string(), maxconn.to_string()]);
    }
    if let Some(retries) = request.retries {
        arguments.extend(["--retries".to_string(), retries.to_string()]);
    }
    Ok(arguments)
}

async fn job_details(State(state): State<Arc<UiState>>, UrlPath(id): UrlPath<u64>) -> Response {
    if let Some(job) = state.job(id) {
        return Json(job.summary()).into_response();
    }
    match state.earlier.iter().find(|job| job["id"] == id) {
        Some(job) => Json(job.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A finished job's `--json` report, as a file to keep.
async fn job_report(State(state): State<Arc<UiState>>, UrlPath(id): UrlPath<u64>) -> Response {
    let report = match state.job(id) {
        Some(job) => job.summary()["outcome"]["report"].clone(),
        None => state
            .earlier
            .iter()
            .find(|job| job["id"] == id)
            .map(|job| job["outcome"]["report"].clone())
            .unwrap_or(Value::Null),
    };
    if report.is_null() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = serde_json::to_string_pretty(&report).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"image-transmit-job-{id}.json\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Server-sent events of one job: what it said so far, then what it says next.
async fn job_events(State(state): State<Arc<UiState>>, UrlPath(id): UrlPath<u64>) -> Response {
    let Some(job) = state.job(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (past, live) = job.subscribe();
    let past = futures_util::stream::iter(past);
    let live = futures_util::stream::unfold(live, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                // A page too slow to keep up misses some progress, not the end.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let events = past.chain(live).map(|event| {
        Ok::<_, std::convert::Infallible>(SseEvent::default().data(event.to_string()))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn stop_job(State(state): State<Arc<UiState>>, UrlPath(id): UrlPath<u64>) -> Response {
    match state.job(id) {
        Some(job) => match job.stop().await {
            Ok(()) => Json(json!({"ok": true})).into_response(),
            Err(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": message})),
            )
                .into_response(),
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_are_served() {
        for host in [
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:9",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "10.0.0.1:80",
            "[fe80::1]:9",
            "",
            "localhost.evil:1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(is_loopback_origin("http://127.0.0.1:43215"));
        for origin in [
            "null",
            "http://evil.example",
            "https://10.0.0.1:8080",
            "127.0.0.1",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }
}
