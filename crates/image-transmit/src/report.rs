//! The `--json FILE` report: the job's outcome for scripts and CI pipelines.

use std::path::Path;

use engine::{ImageStatus, JobReport};
use serde_json::json;

use crate::messages::explain;

/// Writes the report next to its final name first, so a reader never sees half a file.
pub(crate) fn write(
    path: &Path,
    command: &str,
    source: &str,
    target: &str,
    report: &JobReport,
) -> anyhow::Result<()> {
    let images: Vec<_> = report
        .images
        .iter()
        .map(|image| match &image.status {
            ImageStatus::Succeeded { digest, unchanged } => json!({
                "line": image.line,
                "source": image.source,
                "target": image.target,
                "status": if *unchanged { "unchanged" } else { "copied" },
                "digest": digest.to_string(),
            }),
            ImageStatus::Failed { error } => json!({
                "line": image.line,
                "source": image.source,
                "target": image.target,
                "status": "failed",
                "error": explain(error),
            }),
        })
        .collect();
    let invalid: Vec<_> = report
        .invalid
        .iter()
        .map(|(line, error)| json!({ "line": line, "error": explain(error) }))
        .collect();
    let document = json!({
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
    });
    let temporary = path.with_extension("json.partial");
    fs_err::write(&temporary, serde_json::to_vec_pretty(&document)?)?;
    fs_err::rename(&temporary, path)?;
    Ok(())
}
