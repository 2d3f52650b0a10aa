//! The local web UI (`image-transmit ui`), in place of the original's Windows GUI: the same
//! controls (source, target, threads, retries, full or incremental, single file, the image list,
//! Transmit / Save / Upload / Verify / Watch / Stop, the log and the status line), in a browser,
//! on any system.
//!
//! It listens on loopback and answers only requests that carry the random token printed with
//! its address (`?token=` or the `x-token` header), so another local user or a web page cannot
//! drive it. Registry passwords go from the page to the server, never back. The page and its
//! script are compiled into the binary; its words come from the same catalogs as the command
//! line (`ui.*` keys). Jobs run as the command line does, in a child process (`jobs`).

mod jobs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use engine::bundle::meta::BundleMeta;
use engine::plan::{self, ListOptions};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::commands::{list_endpoint, open_registry};
use crate::config::{Config, RegistryEntry};
use crate::messages::{explain, explain_plan, explain_registry};

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
/// The English catalog, read for the list of `ui.*` and `status.*` keys the page needs.
const CATALOG: &str = include_str!("../../locales/en.yml");

/// Where the UI's own files go: job reports and the configuration with registries added on
/// the page.
const UI_DIR: &str = "data/ui";

/// Everything the handlers share.
pub(crate) struct UiState {
    token: String,
    /// cfg.yaml as found at start, if any: its text is the base of each job's configuration.
    config_path: Option<PathBuf>,
    config: Config,
    /// Registries added on the page for this run, as (side, entry).
    added: Mutex<Vec<(Side, RegistryEntry)>>,
    jobs: Mutex<Vec<Arc<jobs::Job>>>,
    /// Jobs of earlier runs of the UI, from the reports they left in [`UI_DIR`], oldest first.
    earlier: Vec<Value>,
    language: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Source,
    Target,
}

impl UiState {
    pub(crate) fn new(config_path: Option<PathBuf>, config: Config, language: String) -> UiState {
        UiState {
            token: random_token(),
            config_path,
            config,
            added: Mutex::new(Vec::new()),
            jobs: Mutex::new(Vec::new()),
            earlier: earlier_jobs(Path::new(UI_DIR)),
            language,
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    fn entries(&self, side: Side) -> Vec<RegistryEntry> {
        let configured = match side {
            Side::Source => &self.config.source,
            Side::Target => &self.config.target,
        };
        let added = self.added.lock().unwrap_or_else(|p| p.into_inner());
        configured
            .iter()
            .cloned()
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
    let Ok(listing) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut reports: Vec<(std::time::SystemTime, Value)> = listing
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|entry| {
            let when = entry.metadata().and_then(|m| m.modified()).ok()?;
            let report =
                serde_json::from_slice::<Value>(&std::fs::read(entry.path()).ok()?).ok()?;
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
                "started": jiff::Timestamp::try_from(when)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/state", get(ui_state))
        .route("/api/i18n", get(catalog))
        .route("/api/registries", post(add_registry))
        .route("/api/verify", post(verify))
        .route("/api/jobs", post(start_job))
        .route("/api/jobs/{id}", get(job_details))
        .route("/api/jobs/{id}/events", get(job_events))
        .route("/api/jobs/{id}/stop", post(stop_job))
        .route("/api/bundle", get(bundle))
        .route(
            "/api/uploads/{batch}/{name}",
            axum::routing::put(receive_file),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Refuses any request without the token, before it reaches a handler.
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
    if given.as_deref() == Some(state.token.as_str()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            rust_i18n::t!("ui.unauthorized", locale = state.language.as_str()).to_string(),
        )
            .into_response()
    }
}

async fn page(State(state): State<Arc<UiState>>) -> Html<String> {
    Html(
        PAGE.replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT)
            .replace("{{LANG}}", &state.language),
    )
}

/// Meta files under `data/`, newest first: what Upload and the incremental base offer.
fn meta_files() -> Vec<String> {
    fn walk(directory: &Path, found: &mut Vec<PathBuf>) {
        let Ok(listing) = std::fs::read_dir(directory) else {
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

async fn ui_state(State(state): State<Arc<UiState>>) -> Json<Value> {
    let names = |side| -> Vec<String> {
        state
            .entries(side)
            .into_iter()
            .map(|entry| entry.name)
            .collect()
    };
    let jobs: Vec<Value> = state
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .rev()
        .map(|job| job.summary())
        .chain(state.earlier.iter().rev().cloned())
        .collect();
    Json(json!({
        "sources": names(Side::Source),
        "targets": names(Side::Target),
        "maxconn": state.config.maxconn,
        "retries": state.config.retries,
        "singlefile": state.config.singlefile,
        "cache": state.config.cache.is_some(),
        "language": state.language,
        // Only a language cfg.yaml sets outranks the browser's.
        "configured_language": state.config.lang.as_deref().map(crate::i18n::normalize),
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
    let words = CATALOG
        .lines()
        .filter_map(|line| line.split_once(':').map(|(key, _)| key.trim()))
        .filter(|key| key.starts_with("ui.") || key.starts_with("status."))
        .map(|key| {
            (
                key.to_string(),
                rust_i18n::t!(key, locale = language).to_string(),
            )
        })
        .collect();
    Json(words)
}

#[derive(Deserialize)]
struct NewRegistry {
    side: Side,
    name: String,
    registry: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    skiptlsverify: bool,
}

/// A registry for this run only, as the original's GUI could not do. It is checked to be a
/// usable address; nothing is written to cfg.yaml.
async fn add_registry(State(state): State<Arc<UiState>>, Json(new): Json<NewRegistry>) -> Response {
    let non_empty = |text: String| Some(text).filter(|t| !t.trim().is_empty());
    let entry = RegistryEntry {
        name: new.name.trim().to_string(),
        registry: new.registry.trim().to_string(),
        user: non_empty(new.user),
        password: non_empty(new.password),
        repository: non_empty(new.repository),
        skiptlsverify: new.skiptlsverify,
        ..RegistryEntry::default()
    };
    if entry.name.is_empty() || state.entry(new.side, &entry.name).is_some() {
        return bad_request(rust_i18n::t!("ui.registry_name_taken", name = entry.name).to_string());
    }
    if let Err(error) = open_registry(&entry, &state.config) {
        return bad_request(error.to_string());
    }
    state
        .added
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((new.side, entry));
    Json(json!({"ok": true})).into_response()
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
/// whether each source image exists, asked with a HEAD.
async fn verify(State(state): State<Arc<UiState>>, Json(request): Json<VerifyRequest>) -> Response {
    let (Some(source), Some(target)) = (
        state.entry(Side::Source, &request.source),
        state.entry(Side::Target, &request.target),
    ) else {
        return bad_request(rust_i18n::t!("ui.pick_registries").to_string());
    };
    let lines = match plan::parse_list(&request.list) {
        Ok(lines) => lines,
        Err(error) => return bad_request(explain_plan(&error)),
    };
    let (source_registry, target_registry) = match (
        open_registry(&source, &state.config),
        open_registry(&target, &state.config),
    ) {
        (Ok(source), Ok(target)) => (source, target),
        (Err(error), _) | (_, Err(error)) => return bad_request(error.to_string()),
    };
    let options = ListOptions {
        source: Some(list_endpoint(&source_registry)),
        target: Some(list_endpoint(&target_registry)),
        target_namespace: target.repository.clone().filter(|n| !n.is_empty()),
    };
    let (pairs, invalid) = plan::plan(&lines, &options);
    let checks = futures_util::stream::iter(pairs)
        .map(|pair| {
            let registry = source_registry.clone();
            let target_host = target_registry.host().to_string();
            async move {
                let found = registry
                    .head_manifest(
                        &pair.source.repository,
                        &pair.source.target.to_string(),
                        false,
                    )
                    .await;
                let (exists, error) = match found {
                    Ok(Some(_)) => (true, None),
                    Ok(None) => (false, Some(rust_i18n::t!("ui.not_on_source").to_string())),
                    Err(error) => (false, Some(explain_registry(&error))),
                };
                json!({
                    "line": pair.line,
                    "source": format!("{}/{}", registry.host(), pair.source),
                    "target": format!("{target_host}/{}", pair.target),
                    "exists": exists,
                    "error": error,
                })
            }
        })
        .buffered(state.config.maxconn.max(1))
        .collect::<Vec<_>>()
        .await;
    let invalid: Vec<Value> = invalid
        .into_iter()
        .map(|line| json!({"line": line.line, "error": explain(&engine::Error::from(line.reason))}))
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
    #[serde(default)]
    list: String,
    maxconn: Option<usize>,
    retries: Option<u32>,
    #[serde(default)]
    incremental_from: Vec<String>,
    #[serde(default)]
    single_file: bool,
    #[serde(default)]
    meta: String,
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
    if let Err(error) = std::fs::create_dir_all(&directory) {
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
    match jobs::start(id, &request.mode, arguments, report) {
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
    let mut arguments = vec!["--config".to_string()];
    arguments.push(job_config(state, directory, id)?.display().to_string());
    let language = if request.language.is_empty() {
        state.language.clone()
    } else {
        request.language.clone()
    };
    arguments.extend(["--lang".to_string(), language]);
    let list = directory.join(format!("job-{id}-{}.lst", std::process::id()));
    std::fs::write(&list, &request.list).map_err(|e| e.to_string())?;
    let list = list.display().to_string();
    let needs = |name: &str, side| {
        if state.entry(side, name).is_some() {
            Ok(name.to_string())
        } else {
            Err(rust_i18n::t!("ui.pick_registries").to_string())
        }
    };
    let has_list = !request.list.trim().is_empty();
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
                list,
            ]);
        }
        "save" => {
            arguments.extend([
                "save".to_string(),
                "--from".to_string(),
                needs(&request.source, Side::Source)?,
                "--list".to_string(),
                list,
            ]);
            for base in &request.incremental_from {
                arguments.extend(["--incremental-from".to_string(), base.clone()]);
            }
            if request.single_file {
                arguments.push("--single-file".to_string());
            }
        }
        "upload" => {
            if request.meta.is_empty() {
                return Err(rust_i18n::t!("ui.pick_meta").to_string());
            }
            arguments.extend([
                "upload".to_string(),
                "--to".to_string(),
                needs(&request.target, Side::Target)?,
                request.meta.clone(),
            ]);
            if has_list {
                arguments.extend(["--list".to_string(), list]);
            }
        }
        other => return Err(format!("unknown mode {other}")),
    }
    if let Some(maxconn) = request.maxconn.filter(|n| *n > 0) {
        arguments.extend(["--maxconn".to_string(), maxconn.to_string()]);
    }
    if let Some(retries) = request.retries {
        arguments.extend(["--retries".to_string(), retries.to_string()]);
    }
    Ok(arguments)
}

/// The configuration a job runs with: cfg.yaml as found, plus the registries added on the
/// page. Written only when registries were added; it then holds their passwords, so it is
/// removed when the job ends.
fn job_config(state: &UiState, directory: &Path, id: u64) -> Result<PathBuf, String> {
    let added = state
        .added
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if added.is_empty()
        && let Some(path) = &state.config_path
    {
        return Ok(path.clone());
    }
    let base = match &state.config_path {
        Some(path) => crate::text_file::read(path).map_err(|e| e.to_string())?,
        None => String::new(),
    };
    let mut document: Value = if base.trim().is_empty() {
        json!({})
    } else {
        serde_saphyr::from_str(&base).map_err(|e| e.to_string())?
    };
    if !document.is_object() {
        document = json!({});
    }
    for (side, entry) in added {
        let key = match side {
            Side::Source => "source",
            Side::Target => "target",
        };
        let list = &mut document[key];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(list) = list.as_array_mut() {
            list.push(json!({
                "name": entry.name,
                "registry": entry.registry,
                "user": entry.user,
                "password": entry.password,
                "repository": entry.repository,
                "skiptlsverify": entry.skiptlsverify,
            }));
        }
    }
    let path = directory.join(format!("job-{id}-{}-cfg.yaml", std::process::id()));
    let text = serde_saphyr::to_string(&document).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
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

/// One file of a bundle chosen in the browser (its meta file and data files, from a USB stick
/// say), streamed to `data/uploads/<batch>/` so Upload and the bundle view find it there.
async fn receive_file(
    UrlPath((batch, name)): UrlPath<(String, String)>,
    body: axum::body::Body,
) -> Response {
    let plain = |text: &str| {
        !text.is_empty()
            && text != "."
            && text != ".."
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if !plain(&batch) || !plain(&name) {
        return bad_request(rust_i18n::t!("ui.bad_file_name", name = name).to_string());
    }
    let directory = Path::new("data").join("uploads").join(&batch);
    let path = directory.join(&name);
    let written = async {
        tokio::fs::create_dir_all(&directory).await?;
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other)?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file).await?;
        Ok::<_, std::io::Error>(())
    }
    .await;
    match written {
        Ok(()) => Json(json!({"path": path.display().to_string()})).into_response(),
        Err(error) => {
            let _ = std::fs::remove_file(&path);
            bad_request(error.to_string())
        }
    }
}

#[derive(Deserialize)]
struct BundleQuery {
    meta: String,
}

/// What a bundle holds and what it builds on, read from its meta file.
async fn bundle(Query(query): Query<BundleQuery>) -> Response {
    let path = PathBuf::from(&query.meta);
    let meta = match BundleMeta::read(&path) {
        Ok(meta) => meta,
        Err(error) => return bad_request(explain(&engine::Error::from(error))),
    };
    let images: Vec<Value> = meta
        .manifests
        .keys()
        .map(|key| json!({"name": key, "media_type": meta.media_types.get(key)}))
        .collect();
    let datafiles: Vec<Value> = meta
        .datafiles
        .iter()
        .map(|(name, size)| json!({"name": name, "size": size}))
        .collect();
    let bases: Vec<String> = meta.bases.iter().map(|base| base.meta.clone()).collect();
    Json(json!({
        "meta": query.meta,
        "images": images,
        "datafiles": datafiles,
        "blobs": meta.blobs.len(),
        "assumed": meta.blobs_assumed().len(),
        "bases": bases,
        "compressor": meta.compressor.to_string(),
        "original": meta.is_original(),
    }))
    .into_response()
}
