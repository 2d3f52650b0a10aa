//! Import, before anything moves: the folder browser that finds a bundle where it lies (a USB
//! stick, a share, any folder the user can read; nothing is copied), what the bundle holds, its
//! offline check, and what an upload of it would create on a target, with an increment whose
//! base the target lacks explained before anything is pushed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use engine::bundle::meta::BundleMeta;
use engine::bundle::parts::check_parts;
use engine::transport::Location;
use rust_i18n::t;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{UiState, bad_request};
use crate::commands::{JobSettings, pipeline, verify};
use crate::config::Side;
use crate::messages::{explain, explain_part};

#[derive(Deserialize)]
pub(super) struct BrowseQuery {
    #[serde(default)]
    path: String,
}

/// What a folder holds that Import can use: its folders, bundle meta files and OCI archives.
/// With no path, the folder the UI was started in. `roots` are the places to start from: the
/// drives on Windows; the file system's root, the home folder and removable media elsewhere.
pub(super) async fn browse(Query(query): Query<BrowseQuery>) -> Response {
    let folder = if query.path.trim().is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        PathBuf::from(query.path.trim())
    };
    off_the_runtime(move || list_folder(&folder)).await
}

/// Runs file-system work on the blocking pool (a slow USB stick must not stall the server) and
/// answers with its JSON, or its sentence as a bad request.
async fn off_the_runtime(
    work: impl FnOnce() -> Result<Value, String> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(message)) => bad_request(message),
        Err(error) => bad_request(error.to_string()),
    }
}

fn list_folder(folder: &Path) -> Result<Value, String> {
    let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
    let cannot = |error: std::io::Error| {
        t!(
            "ui.folder_unreadable",
            path = folder.display(),
            detail = error.to_string()
        )
        .to_string()
    };
    let listing: Vec<fs_err::DirEntry> = fs_err::read_dir(&folder)
        .map_err(cannot)?
        .flatten()
        .collect();
    let name_of = |entry: &fs_err::DirEntry| entry.file_name().to_string_lossy().into_owned();
    // A package's data files are named after its meta file: they are shown as part of the
    // package (step 2), not as something to pick.
    let packages: Vec<String> = listing
        .iter()
        .filter_map(|entry| {
            name_of(entry)
                .strip_suffix("_meta.yaml")
                .map(|p| format!("{p}_"))
        })
        .collect();
    let mut entries: Vec<(u8, String, Value)> = Vec::new();
    for entry in &listing {
        let name = name_of(entry);
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows links, as a file dialog does: a link to a USB stick's folder is a folder.
        let Ok(metadata) = fs_err::metadata(&path) else {
            continue;
        };
        let kind = if metadata.is_dir() {
            "folder"
        } else if name.ends_with("_meta.yaml") {
            "bundle"
        } else if name.to_ascii_lowercase().ends_with(".tar")
            && !packages
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
            && engine::bundle::oci_archive::is_tar(&path)
        {
            "archive"
        } else {
            continue;
        };
        let order = u8::from(kind != "folder");
        let value = json!({
            "name": name,
            "path": path.display().to_string(),
            "kind": kind,
            "size": (kind != "folder").then_some(metadata.len()),
        });
        entries.push((order, name.to_lowercase(), value));
    }
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(json!({
        "path": folder.display().to_string(),
        "parent": folder.parent().map(|p| p.display().to_string()),
        "entries": entries.into_iter().map(|(_, _, value)| value).collect::<Vec<_>>(),
        "roots": roots(),
    }))
}

/// Where browsing can start.
fn roots() -> Vec<Value> {
    let mut roots: Vec<(String, PathBuf)> = Vec::new();
    if cfg!(windows) {
        // A: and B: are floppy drives, which can stall the listing; nobody carries a bundle
        // on one.
        for letter in 'C'..='Z' {
            let drive = PathBuf::from(format!("{letter}:\\"));
            if drive.is_dir() {
                roots.push((format!("{letter}:"), drive));
            }
        }
    } else {
        roots.push(("/".to_string(), PathBuf::from("/")));
        if let Some(home) = std::env::var_os("HOME") {
            roots.push((t!("ui.home_folder").to_string(), PathBuf::from(home)));
        }
        // Removable media as desktops mount them (/mnt is the administrator's, left out).
        for base in ["/media", "/run/media", "/Volumes"] {
            let Ok(listing) = fs_err::read_dir(base) else {
                continue;
            };
            for entry in listing.flatten() {
                let path = entry.path();
                // /media/USER/STICK and /run/media/USER/STICK: one level further down.
                let nested = base != "/Volumes";
                let mounts: Vec<PathBuf> = if nested {
                    fs_err::read_dir(&path)
                        .map(|inner| inner.flatten().map(|e| e.path()).collect())
                        .unwrap_or_default()
                } else {
                    vec![path.clone()]
                };
                for mount in mounts.into_iter().filter(|p| p.is_dir()) {
                    let name = mount
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    roots.push((name, mount));
                }
            }
        }
    }
    if let Ok(here) = std::env::current_dir() {
        roots.push((t!("ui.start_folder").to_string(), here));
    }
    roots
        .into_iter()
        .map(|(name, path)| json!({"name": name, "path": path.display().to_string()}))
        .collect()
}

#[derive(Deserialize)]
pub(super) struct BundleQuery {
    meta: String,
}

/// What a bundle holds: its images with their sizes, full or incremental and which base bundles
/// it needs (and whether they sit beside it), and each data file: there, and of the recorded
/// size. Cheap: nothing is hashed (that is [`check_bundle`]).
pub(super) async fn bundle(Query(query): Query<BundleQuery>) -> Response {
    let path = PathBuf::from(&query.meta);
    off_the_runtime(move || describe(&path)).await
}

fn describe(path: &Path) -> Result<Value, String> {
    let meta = BundleMeta::read(path).map_err(|error| explain(&engine::Error::from(error)))?;
    let directory = path.parent().unwrap_or(Path::new("."));
    let images: Vec<Value> = meta
        .manifests
        .keys()
        .map(|key| json!({"name": key, "size": meta.image_size(key)}))
        .collect();
    // The same check upload makes first, in the same words.
    let problems: Vec<String> = match check_parts(&meta, directory) {
        Ok(()) => Vec::new(),
        Err(problems) => problems.iter().map(explain_part).collect(),
    };
    let datafiles: Vec<Value> = meta
        .datafiles
        .iter()
        .map(|(name, size)| json!({"name": name, "size": size}))
        .collect();
    let assumed = meta.blobs_assumed();
    let mut bases: Vec<String> = meta.bases.iter().map(|base| base.meta.clone()).collect();
    bases.extend(assumed.iter().flat_map(|blob| blob.bases.iter().cloned()));
    bases.sort();
    bases.dedup();
    let incremental = !bases.is_empty() || !assumed.is_empty();
    let bases: Vec<Value> = bases
        .into_iter()
        .map(|name| json!({"name": name, "beside": directory.join(&name).is_file()}))
        .collect();
    Ok(json!({
        "meta": path.display().to_string(),
        "file": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "kind": if incremental { "incremental" } else { "full" },
        "images": images,
        "datafiles": datafiles,
        "problems": problems,
        "bases": bases,
        "total_size": meta.datafiles.values().fold(0u64, |total, size| total.saturating_add(*size)),
        "original": meta.is_original(),
        "compressor": meta.compressor.to_string(),
    }))
}

#[derive(Deserialize)]
pub(super) struct CheckRequest {
    meta: String,
}

/// The offline check (`verify META`): every data file read and every blob's digest checked.
pub(super) async fn check_bundle(Json(request): Json<CheckRequest>) -> Response {
    match verify::check(Path::new(&request.meta)).await {
        Ok(outcome) => Json(json!({
            "sound": outcome.faults.is_empty(),
            "notes": outcome.notes,
            "faults": outcome.faults,
            "summary": outcome.summary,
            "increment": outcome.increment,
        }))
        .into_response(),
        Err(error) => bad_request(error.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct PlanRequest {
    meta: String,
    target: String,
}

/// What an upload of the whole bundle to `target` would create, after every check the upload
/// itself makes first (data files, the target's login, an increment's base on the target).
/// A refusal comes back as the upload's own sentence, so the page can show it before the
/// person presses Upload.
pub(super) async fn plan_upload(
    State(state): State<Arc<UiState>>,
    Json(request): Json<PlanRequest>,
) -> Response {
    if state.entry(Side::Target, &request.target).is_none() {
        return bad_request(t!("ui.pick_target").to_string());
    }
    let config = state.config();
    let job = pipeline::JobRequest::new(
        "upload",
        Location::Bundle(request.meta.clone().into()),
        Location::Registry(request.target.clone()),
    );
    let settings = JobSettings::new(&config, &Default::default());
    match pipeline::prepare(&job, &config, &settings).await {
        Ok(prepared) => {
            let images: Vec<Value> = prepared
                .pairs
                .iter()
                .map(|pair| {
                    json!({
                        "image": pair.line,
                        "target": format!("{}/{}", prepared.destination_described(), pair.target),
                    })
                })
                .collect();
            let invalid: Vec<Value> = prepared
                .invalid
                .iter()
                .map(|line| {
                    json!({
                        "line": line.line,
                        "error": explain(&engine::Error::from(line.reason.clone())),
                    })
                })
                .collect();
            Json(json!({"images": images, "invalid": invalid})).into_response()
        }
        Err(error) => bad_request(error.to_string()),
    }
}
