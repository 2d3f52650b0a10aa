//! `copy` (and the legacy `-src -dst -lst`): registry to registry, streaming, moving only the
//! blobs the target lacks.

use std::process::ExitCode;
use std::sync::Arc;

use engine::CopyOptions;
use engine::plan::{self, ListOptions};
use engine::transport::registry::{RegistryDestination, RegistrySource};

use super::{
    JobSettings, RunError, Sink, check_source, finish, list_endpoint, open_source, open_target,
    platform_filters, read_lines, run_job,
};
use crate::cli::{CopyArgs, LoadArgs};
use crate::config::Config;
use crate::messages::explain_registry;

pub(crate) async fn run(args: &CopyArgs, config: &Config) -> anyhow::Result<ExitCode> {
    // `--to docker` / `--to containerd`: a pull straight into the local engine.
    if super::load::Engine::parse(&args.to).is_some() {
        let load = LoadArgs {
            to: args.to.clone(),
            from: Some(args.from.clone()),
            inputs: args.images.clone(),
            list: args.list.clone(),
            platform: args.platform.clone(),
            transfer: args.transfer.clone(),
            json: args.json.clone(),
            source_tls: args.source_tls.clone(),
            ..LoadArgs::default()
        };
        return super::load::run(&load, config).await;
    }
    let settings = JobSettings::new(config, &args.transfer);
    let (_, source) = open_source(config, &settings, &args.from, &args.source_tls)?;
    let (target_entry, target) = open_target(config, &settings, &args.to, &args.target_tls)?;
    let platforms = platform_filters(args.platform.as_deref(), config)?;

    let lines = read_lines(args.list.as_deref(), &args.images)?;
    let options = ListOptions {
        source: Some(list_endpoint(&source)),
        target: Some(list_endpoint(&target)),
        target_namespace: target_entry.repository.clone().filter(|n| !n.is_empty()),
    };
    let (pairs, invalid) = plan::plan(&lines, &options);

    // One clear error for an unreachable registry or a wrong password, not one per image.
    if let Some(first) = pairs.first() {
        check_source(&source, &first.source.repository, &settings).await?;
        target
            .check(&first.target.repository, true)
            .await
            .map_err(|e| RunError(explain_registry(&e)))?;
    }

    let options = CopyOptions {
        max_connections: settings.max_connections,
        retries: settings.retries,
        stall_timeout: settings.stall_timeout,
        platforms,
        platform_as_manifest: args.platform_as_manifest,
        ..CopyOptions::default()
    };
    let report = run_job(
        "copy",
        Arc::new(RegistrySource::new(source.clone())),
        Sink::Pieces(Arc::new(RegistryDestination::new(target.clone()))),
        options,
        &settings,
        pairs,
        invalid,
    )
    .await;
    if let Some(path) = &args.json {
        crate::report::write(path, "copy", source.host(), target.host(), &report)?;
    }
    Ok(finish(&report))
}
