//! `verify META`: the offline check an operator runs on the jump host before uploading: every
//! data file present with its size and sha256, every blob's content matching its digest, every
//! manifest's blobs either in the bundle or left to a base. Exit 1 on any fault.

use std::path::Path;
use std::process::ExitCode;

use engine::bundle::verify::{Finding, verify_bundle};
use rust_i18n::t;

use super::RunError;
use crate::cli::VerifyArgs;
use crate::messages::{
    explain, explain_part, explain_registry, explain_squashfs, rewritten_images,
};
use crate::printer::say;

pub(crate) async fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let outcome = check(&args.meta).await?;
    for line in &outcome.notes {
        say!("{line}");
    }
    for line in &outcome.faults {
        say!("  {line}");
    }
    say!("{}", outcome.summary);
    if let Some(line) = &outcome.increment {
        say!("{line}");
    }
    Ok(if outcome.faults.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A bundle's check, said in the user's language: what `verify` prints and the web UI shows.
pub(crate) struct VerifyOutcome {
    /// Images a squashfs bundle delivers under new digests.
    pub(crate) notes: Vec<String>,
    /// One sentence per fault; none means the bundle is sound.
    pub(crate) faults: Vec<String>,
    pub(crate) summary: String,
    /// For an increment, what else it needs and where that is.
    pub(crate) increment: Option<String>,
}

pub(crate) async fn check(meta: &Path) -> anyhow::Result<VerifyOutcome> {
    let path = meta.to_path_buf();
    let report = tokio::task::spawn_blocking(move || verify_bundle(&path))
        .await?
        .map_err(|e| RunError(explain(&e)))?;
    let summary = t!(
        "verify.summary",
        meta = meta.display(),
        parts = report.parts,
        blobs = report.blobs,
        images = report.images,
        faults = report.findings.len()
    )
    .to_string();
    // An increment checks out alone; say what else it needs, or "0 faults" misleads.
    let increment = (report.left_to_bases > 0).then(|| {
        let count = report.left_to_bases;
        match report.bases.as_slice() {
            [] => t!("verify.increment_unnamed", count = count).to_string(),
            bases => bases
                .iter()
                .map(|(base, beside)| {
                    let key = if *beside {
                        "verify.increment_beside"
                    } else {
                        "verify.increment_elsewhere"
                    };
                    t!(key, count = count, base = base).to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    });
    Ok(VerifyOutcome {
        notes: rewritten_images(&report.rewritten),
        faults: report.findings.iter().map(describe).collect(),
        summary,
        increment,
    })
}

fn describe(finding: &Finding) -> String {
    match finding {
        Finding::Part(error) => explain_part(error),
        Finding::PartDigest {
            file,
            expected,
            actual,
        } => t!(
            "verify.part_digest",
            file = file,
            expected = expected,
            actual = actual
        )
        .to_string(),
        Finding::BlobDigest {
            file,
            digest,
            actual,
            images,
        } => t!(
            "verify.blob_digest",
            file = file,
            digest = digest.short(),
            actual = actual.short(),
            images = if images.is_empty() {
                t!("common.none").to_string()
            } else {
                images.join(", ")
            }
        )
        .to_string(),
        Finding::BlobUnreadable { image, digest } => t!(
            "verify.blob_unreadable",
            image = image,
            digest = digest.short()
        )
        .to_string(),
        Finding::BlobMissing { image, digest } => t!(
            "verify.blob_missing",
            image = image,
            digest = digest.short()
        )
        .to_string(),
        // The error names the image already.
        Finding::BadManifest { image: _, error } => explain_registry(error),
        Finding::ChildManifestMissing { image, digest } => t!(
            "verify.child_missing",
            image = image,
            digest = digest.short()
        )
        .to_string(),
        Finding::ChildManifestDigest {
            image,
            digest,
            actual,
        } => t!(
            "verify.child_digest",
            image = image,
            digest = digest.short(),
            actual = actual.short()
        )
        .to_string(),
        Finding::NestedIndex { image } => t!("verify.nested_index", image = image).to_string(),
        Finding::Squashfs(error) => explain_squashfs(error),
    }
}
