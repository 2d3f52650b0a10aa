//! `upload` (and the legacy `-dst=X -img=META [-lst=F]`): a bundle into a registry. Nothing is
//! pushed until every data file is there with its recorded size and, for an incremental
//! bundle, until the target is known to hold every blob the bundle leaves to its bases.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use engine::bundle::parts::check_parts;
use engine::bundle::reader::BundleReader;
use engine::plan::{self, ListOptions};
use engine::precheck::LackingBlob;
use engine::transport::Location;
use registry::{Digest, Registry};
use rust_i18n::t;

use super::pipeline::{self, JobRequest};
use super::{JobSettings, RunError};
use crate::cli::UploadArgs;
use crate::config::Config;
use crate::messages::{explain, rewritten_images};
use crate::printer::alert;

pub(crate) async fn run(args: &UploadArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let settings = JobSettings::new(config, &args.transfer);
    let mut request = JobRequest::new(
        "upload",
        Location::Bundle(args.meta.clone()),
        Location::Registry(args.to.clone()),
    );
    request.list = args.list.clone();
    request.images = args.images.clone();
    request.target_tls = args.target_tls.clone();
    request.json = args.json.clone();
    pipeline::run(request, config, &settings).await
}

/// Finds where on the target the blobs an increment leaves to its bases are (where the base
/// put them, else any repository of the target's catalog), so they can be mounted; whether any
/// is missing is [`lacking_blobs`]'s to say.
pub(crate) async fn settle_bases(
    reader: &mut BundleReader,
    target: &Registry,
    options: &ListOptions,
) {
    let locations: HashMap<Digest, Vec<String>> = reader
        .base_repositories()
        .into_iter()
        .map(|(digest, repositories)| {
            let targets = repositories
                .iter()
                .filter_map(|repository| plan::plan_line(repository, options).ok())
                .map(|pair| pair.target.repository)
                .collect();
            (digest, targets)
        })
        .collect();
    let locations = find_unplaced_base_blobs(target, locations).await;
    reader.set_base_locations(locations);
}

/// A squashfs bundle's images reach the target under new digests: one warning line each.
pub(crate) fn warn_rewritten(reader: &BundleReader) {
    for line in rewritten_images(reader.rewritten_images()) {
        alert!("{line}");
    }
}

/// Every data file must be there with the size the meta records; all problems are listed.
pub(crate) fn refuse_damaged_parts(meta_path: &Path) -> anyhow::Result<()> {
    let meta = engine::bundle::meta::BundleMeta::read(meta_path)
        .map_err(|e| RunError(explain(&engine::Error::from(e))))?;
    let directory = meta_path.parent().unwrap_or(Path::new("."));
    if let Err(problems) = check_parts(&meta, directory) {
        let lines: Vec<String> = problems
            .into_iter()
            .map(|problem| format!("  {}", explain(&engine::Error::from(problem))))
            .collect();
        return Err(RunError(format!(
            "{}\n{}",
            t!("upload.parts_damaged"),
            lines.join("\n")
        ))
        .into());
    }
    Ok(())
}

/// Most repositories of the target searched for base blobs no bundle places.
const CATALOG_SEARCH_LIMIT: usize = 200;

/// Base blobs whose repositories no meta records (the fork's increments have no meta; an
/// original increment whose base meta is elsewhere) are looked for in the target's other
/// repositories, from its catalog, so they can be mounted instead of the upload being refused.
/// A registry without a readable catalog leaves them where they were: unknown.
async fn find_unplaced_base_blobs(
    target: &Registry,
    mut locations: HashMap<Digest, Vec<String>>,
) -> HashMap<Digest, Vec<String>> {
    let unplaced: Vec<Digest> = locations
        .iter()
        .filter(|(_, repositories)| repositories.is_empty())
        .map(|(digest, _)| digest.clone())
        .collect();
    if unplaced.is_empty() {
        return locations;
    }
    let Ok(repositories) = target.list_repositories(CATALOG_SEARCH_LIMIT).await else {
        return locations;
    };
    for digest in unplaced {
        for repository in &repositories {
            if let Ok(Some(_)) = target.blob_size(repository, &digest, false).await {
                locations.insert(digest.clone(), vec![repository.clone()]);
                break;
            }
        }
    }
    locations
}

/// The refusal of an increment whose base blobs the target lacks: each image and blob, and
/// which base bundle to upload first, when the meta says.
pub(crate) fn base_blobs_missing(
    reader: &BundleReader,
    target: &Registry,
    lacking: &[LackingBlob],
) -> String {
    let mut missing: Vec<String> = lacking
        .iter()
        .map(|blob| format!("  {} {}", blob.line, blob.digest.short()))
        .collect();
    missing.sort();
    missing.dedup();
    let digests: Vec<Digest> = lacking.iter().map(|blob| blob.digest.clone()).collect();
    let bases: Vec<String> = reader
        .bases_of(&digests)
        .into_iter()
        .map(|(name, beside)| match beside {
            Some(path) => t!(
                "upload.base_beside",
                program = crate::help::program_name(),
                base = name,
                registry = target.host(),
                path = path.display()
            )
            .to_string(),
            None => t!("upload.base_elsewhere", base = name).to_string(),
        })
        .collect();
    let mut text = t!(
        "upload.base_missing",
        registry = target.host(),
        count = missing.len()
    )
    .to_string();
    text.push('\n');
    text.push_str(&missing.join("\n"));
    for base in bases {
        text.push('\n');
        text.push_str(&base);
    }
    text
}
