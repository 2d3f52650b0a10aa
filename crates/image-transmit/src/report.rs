//! The `--json FILE` report: the job's outcome for scripts and CI pipelines. The generic
//! notification webhook sends the same document, so one parser serves both.

use std::path::Path;

use engine::{ImageReport, ImageStatus, JobReport};
use serde_json::{Value, json};

use crate::messages::explain;

/// Writes the report next to its final name first, so a reader never sees half a file.
pub(crate) fn write(
    path: &Path,
    command: &str,
    source: &str,
    target: &str,
    report: &JobReport,
) -> anyhow::Result<()> {
    write_document(path, &document(command, source, target, report))
}

fn write_document(path: &Path, document: &Value) -> anyhow::Result<()> {
    let temporary = path.with_extension("json.partial");
    fs_err::write(&temporary, serde_json::to_vec_pretty(document)?)?;
    fs_err::rename(&temporary, path)?;
    Ok(())
}

/// The report of a job that ended before its images were tried or reported (bad usage, an
/// unreachable registry, a refused login, a damaged bundle): the same document with no images,
/// plus the sentence the user saw and the exit status, so a script reading `--json` always
/// finds a report for the run it started.
pub(crate) fn write_failure(
    path: &Path,
    command: &str,
    source: &str,
    target: &str,
    error: &str,
    exit_status: u8,
) -> anyhow::Result<()> {
    let mut document = document(command, source, target, &JobReport::default());
    document["error"] = json!(error);
    document["exit_status"] = json!(exit_status);
    write_document(path, &document)
}

/// One image's outcome: where from, where to, and its digest or why it failed.
pub(crate) fn image(image: &ImageReport) -> Value {
    let mut value = json!({
        "line": image.line,
        "source": image.source,
        "target": image.target,
        "size": image.size,
        "elapsed_seconds": image.elapsed.as_secs_f64(),
    });
    match &image.status {
        ImageStatus::Succeeded { digest, unchanged } => {
            value["status"] = json!(if *unchanged { "unchanged" } else { "copied" });
            value["digest"] = json!(digest.to_string());
        }
        ImageStatus::Failed { error } => {
            value["status"] = json!("failed");
            value["error"] = json!(explain(error));
        }
    }
    value
}

/// The whole job: totals, bytes, blobs, cache, time, and every image and invalid line.
pub(crate) fn document(command: &str, source: &str, target: &str, report: &JobReport) -> Value {
    let images: Vec<_> = report.images.iter().map(image).collect();
    let invalid: Vec<_> = report
        .invalid
        .iter()
        .map(|(line, error)| json!({ "line": line, "error": explain(error) }))
        .collect();
    json!({
        "command": command,
        "source": source,
        "target": target,
        "summary": {
            "total": report.images.len() + report.invalid.len(),
            "succeeded": report.succeeded(),
            "failed": report.failed(),
            "invalid": report.invalid.len(),
            "cancelled": report.cancelled,
        },
        "bytes_transferred": report.bytes_transferred,
        "blobs": {
            "transferred": report.blobs_transferred,
            "existing": report.blobs_existing,
            "mounted": report.blobs_mounted,
        },
        "cache": report.cache.map(|cache| json!({
            "hits": cache.hits,
            "bytes_saved": cache.bytes_saved,
            "stored": cache.stored,
            "manifests_offline": cache.manifests_offline,
        })),
        "elapsed_seconds": report.elapsed.as_secs_f64(),
        "images": images,
        "invalid": invalid,
    })
}
