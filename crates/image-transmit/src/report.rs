//! The `--json FILE` report: the job's outcome for scripts and CI pipelines. The generic
//! notification webhook sends the same document, so one parser serves both.

use std::path::Path;

use engine::{ImageReport, ImageStatus, JobReport};
use serde::Serialize;

use crate::messages::explain;

/// The `--json` document (and the webhook's, which adds `event` and `status`): one typed
/// schema, so every field a script reads is declared here and nowhere else.
#[derive(Serialize)]
pub(crate) struct JobDocument<'a> {
    pub(crate) command: &'a str,
    pub(crate) source: &'a str,
    pub(crate) target: &'a str,
    pub(crate) summary: Summary,
    pub(crate) bytes_transferred: u64,
    pub(crate) blobs: Blobs,
    /// What the blob cache saved, when the job read through one; `null` otherwise.
    pub(crate) cache: Option<CacheDocument>,
    pub(crate) elapsed_seconds: f64,
    pub(crate) images: Vec<ImageDocument>,
    pub(crate) invalid: Vec<InvalidLine>,
    /// For a job that ended before its images: the sentence the user saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit_status: Option<u8>,
}

#[derive(Serialize)]
pub(crate) struct Summary {
    /// Images listed: tried plus invalid.
    pub(crate) total: usize,
    pub(crate) succeeded: usize,
    pub(crate) failed: usize,
    pub(crate) invalid: usize,
    pub(crate) cancelled: bool,
}

#[derive(Serialize)]
pub(crate) struct Blobs {
    pub(crate) transferred: usize,
    /// Already at the destination.
    pub(crate) existing: usize,
    /// Linked from another repository of the destination, without transfer.
    pub(crate) mounted: usize,
}

#[derive(Serialize)]
pub(crate) struct CacheDocument {
    pub(crate) hits: usize,
    pub(crate) bytes_saved: u64,
    pub(crate) stored: usize,
    pub(crate) manifests_offline: usize,
}

/// One image's outcome: where from, where to, and its digest or why it failed.
#[derive(Serialize)]
pub(crate) struct ImageDocument {
    pub(crate) line: String,
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) size: u64,
    pub(crate) elapsed_seconds: f64,
    pub(crate) status: ImageOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// Why it failed, in the user's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ImageOutcome {
    Copied,
    /// The destination had it already; nothing was sent.
    Unchanged,
    Failed,
}

/// A list line that could not be planned or found on the source, and why.
#[derive(Serialize)]
pub(crate) struct InvalidLine {
    pub(crate) line: String,
    pub(crate) error: String,
}

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

fn write_document(path: &Path, document: &JobDocument) -> anyhow::Result<()> {
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
    let empty = JobReport::default();
    let mut document = document(command, source, target, &empty);
    document.error = Some(error.to_string());
    document.exit_status = Some(exit_status);
    write_document(path, &document)
}

pub(crate) fn image(image: &ImageReport) -> ImageDocument {
    let (status, digest, error) = match &image.status {
        ImageStatus::Succeeded { digest, unchanged } => {
            let status = if *unchanged {
                ImageOutcome::Unchanged
            } else {
                ImageOutcome::Copied
            };
            (status, Some(digest.to_string()), None)
        }
        ImageStatus::Failed { error } => (ImageOutcome::Failed, None, Some(explain(error))),
    };
    ImageDocument {
        line: image.line.clone(),
        source: image.source.clone(),
        target: image.target.clone(),
        size: image.size,
        elapsed_seconds: image.elapsed.as_secs_f64(),
        status,
        digest,
        error,
    }
}

/// The whole job: totals, bytes, blobs, cache, time, and every image and invalid line.
pub(crate) fn document<'a>(
    command: &'a str,
    source: &'a str,
    target: &'a str,
    report: &JobReport,
) -> JobDocument<'a> {
    JobDocument {
        command,
        source,
        target,
        summary: Summary {
            total: report.images.len() + report.invalid.len(),
            succeeded: report.succeeded(),
            failed: report.failed(),
            invalid: report.invalid.len(),
            cancelled: report.cancelled,
        },
        bytes_transferred: report.bytes_transferred,
        blobs: Blobs {
            transferred: report.blobs_transferred,
            existing: report.blobs_existing,
            mounted: report.blobs_mounted,
        },
        cache: report.cache.map(|cache| CacheDocument {
            hits: cache.hits,
            bytes_saved: cache.bytes_saved,
            stored: cache.stored,
            manifests_offline: cache.manifests_offline,
        }),
        elapsed_seconds: report.elapsed.as_secs_f64(),
        images: report.images.iter().map(image).collect(),
        invalid: report
            .invalid
            .iter()
            .map(|(line, error)| InvalidLine {
                line: line.clone(),
                error: explain(error),
            })
            .collect(),
        error: None,
        exit_status: None,
    }
}
