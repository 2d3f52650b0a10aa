//! Settings: registries added on the page, tested, and kept in cfg.yaml or held for this run.
//!
//! A kept registry is written into cfg.yaml by [`crate::config_edit`] (comments and unknown keys
//! preserved, mode 0600 on unix). One held for this run only lives in the server's memory and
//! reaches a job's child process in an environment variable ([`SESSION_REGISTRIES`]), never in
//! a file: a password typed into the page is left on disk only where the person asked to keep
//! it, and never goes back to the page.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rust_i18n::t;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{UiState, bad_request};
use crate::commands::open_registry;
use crate::config::{self, Config, RegistryEntry, Side};
use crate::messages::explain_registry;

/// The registries a job started by the UI adds to its cfg.yaml: JSON, a list of
/// [`SessionRegistry`]. Read only by a child the UI started (`event_stream::enabled`).
pub(crate) const SESSION_REGISTRIES: &str = "IMAGE_TRANSMIT_UI_REGISTRIES";

/// A registry as the page sends it and as a job's child receives it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionRegistry {
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

impl SessionRegistry {
    fn entry(&self) -> RegistryEntry {
        let non_empty = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        RegistryEntry {
            name: self.name.trim().to_string(),
            registry: self.registry.trim().to_string(),
            user: non_empty(&self.user),
            // A password's spaces may be part of it.
            password: Some(self.password.clone()).filter(|p| !p.is_empty()),
            repository: non_empty(&self.repository),
            skiptlsverify: self.skiptlsverify,
            ..RegistryEntry::default()
        }
    }

    fn of(side: Side, entry: &RegistryEntry) -> SessionRegistry {
        SessionRegistry {
            side,
            name: entry.name.clone(),
            registry: entry.registry.clone(),
            user: entry.user.clone().unwrap_or_default(),
            password: entry.password.clone().unwrap_or_default(),
            repository: entry.repository.clone().unwrap_or_default(),
            skiptlsverify: entry.skiptlsverify,
        }
    }
}

/// Adds the registries the UI passed to this job (see [`SESSION_REGISTRIES`]).
pub(crate) fn add_session_registries(config: &mut Config) {
    if !crate::event_stream::enabled() {
        return;
    }
    let Some(text) = std::env::var_os(SESSION_REGISTRIES) else {
        return;
    };
    let Ok(registries) = serde_json::from_str::<Vec<SessionRegistry>>(&text.to_string_lossy())
    else {
        return;
    };
    for registry in registries {
        let entry = registry.entry();
        match registry.side {
            Side::Source => config.source.push(entry),
            Side::Target => config.target.push(entry),
        }
    }
}

/// The environment variable's value for a job: the registries held for this run.
pub(super) fn session_environment(state: &UiState) -> Option<String> {
    let added = state.added.lock().unwrap_or_else(|p| p.into_inner());
    if added.is_empty() {
        return None;
    }
    let registries: Vec<SessionRegistry> = added
        .iter()
        .map(|(side, entry)| SessionRegistry::of(*side, entry))
        .collect();
    serde_json::to_string(&registries).ok()
}

#[derive(Deserialize)]
pub(super) struct NewRegistry {
    #[serde(flatten)]
    registry: SessionRegistry,
    /// Written into cfg.yaml; otherwise held for this run of the UI only.
    #[serde(default)]
    keep: bool,
}

/// Adds a registry: checked to be a usable address, then kept in cfg.yaml or held for this
/// run.
pub(super) async fn add(
    State(state): State<Arc<UiState>>,
    Json(new): Json<NewRegistry>,
) -> Response {
    let side = new.registry.side;
    let entry = new.registry.entry();
    if entry.name.is_empty() || state.entry(side, &entry.name).is_some() {
        return bad_request(t!("ui.registry_name_taken", name = entry.name).to_string());
    }
    if entry.registry.is_empty() {
        return bad_request(t!("ui.registry_address_needed").to_string());
    }
    if let Err(error) = open_registry(&entry, &state.config()) {
        return bad_request(error.to_string());
    }
    if !new.keep {
        state
            .added
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((side, entry));
        return Json(json!({"ok": true, "kept": false})).into_response();
    }
    match keep(&state, side, &entry) {
        Ok(path) => Json(json!({"ok": true, "kept": true, "path": path.display().to_string()}))
            .into_response(),
        Err(message) => bad_request(message),
    }
}

/// Writes `entry` into cfg.yaml (the one the UI read, else a new one in the folder it was
/// started in) and reads the file back as the UI's configuration.
fn keep(state: &UiState, side: Side, entry: &RegistryEntry) -> Result<PathBuf, String> {
    let mut path_slot = state.config_path.lock().unwrap_or_else(|p| p.into_inner());
    let path = path_slot
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::CONFIG_FILE_NAME));
    let unreadable = |detail: String| {
        t!(
            "ui.config_unreadable",
            path = path.display(),
            detail = detail
        )
        .to_string()
    };
    let bytes = match fs_err::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let text = crate::text_file::decode(&bytes).map_err(|error| unreadable(error.to_string()))?;
    let with_bom = bytes.starts_with(b"\xEF\xBB\xBF") || bytes.starts_with(&[0xFF, 0xFE]);
    let edited =
        crate::config_edit::add_registry(&text, side, entry).map_err(|error| error.to_string())?;
    crate::config_edit::write_config(&path, &edited, with_bom).map_err(|error| {
        t!(
            "ui.config_not_saved",
            path = path.display(),
            detail = error.to_string()
        )
        .to_string()
    })?;
    let loaded = Config::load(&path).map_err(|error| error.to_string())?;
    *state.config.write().unwrap_or_else(|p| p.into_inner()) = loaded.config;
    *path_slot = Some(path.clone());
    Ok(path)
}

#[derive(Deserialize)]
pub(super) struct TestRequest {
    /// A registry already listed, by side and name…
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    side: Option<Side>,
    /// …or one being typed into the form.
    #[serde(default)]
    registry: Option<SessionRegistry>,
}

/// Asks the registry whether it answers and accepts the credentials, and says so in plain words.
pub(super) async fn test(
    State(state): State<Arc<UiState>>,
    Json(request): Json<TestRequest>,
) -> Response {
    let entry = match (&request.registry, &request.name, request.side) {
        (Some(registry), _, _) => registry.entry(),
        (None, Some(name), Some(side)) => match state.entry(side, name) {
            Some(entry) => entry,
            None => return bad_request(t!("ui.pick_registries").to_string()),
        },
        _ => return bad_request(t!("ui.pick_registries").to_string()),
    };
    let registry = match open_registry(&entry, &state.config()) {
        Ok(registry) => registry,
        Err(error) => {
            return Json(json!({"ok": false, "message": error.to_string()})).into_response();
        }
    };
    // Any repository name does: the answer to /v2/ with a pull scope says whether the registry
    // is there and the login is accepted.
    let probe = match &entry.repository {
        Some(namespace) => format!("{namespace}/image-transmit-test"),
        None => "image-transmit-test".to_string(),
    };
    let (ok, message) = match registry.check(&probe, false).await {
        Ok(()) if entry.user.is_some() => {
            (true, t!("ui.registry_login_ok", host = registry.host()))
        }
        Ok(()) => (true, t!("ui.registry_reachable", host = registry.host())),
        Err(error) => (false, explain_registry(&error).into()),
    };
    Json(json!({"ok": ok, "message": message.to_string()})).into_response()
}
