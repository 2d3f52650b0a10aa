//! `copy` (and the legacy `-src -dst -lst`): registry to registry, streaming, moving only the
//! blobs the target lacks.

use std::process::ExitCode;
use std::sync::Arc;

use engine::plan::{self, Endpoint, ListOptions};
use engine::transport::registry::{RegistryDestination, RegistrySource};
use engine::{CopyJob, CopyOptions, Observers, PlatformFilter};
use rust_i18n::t;
use tokio_util::sync::CancellationToken;

use super::{JobSettings, RunError, UsageError, finish, open_registry, read_list};
use crate::cli::{CopyArgs, GlobalOptions};
use crate::config::Config;
use crate::messages::{explain_plan, explain_registry};
use crate::progress::Progress;

pub(crate) async fn run(
    global: &GlobalOptions,
    args: &CopyArgs,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let source_entry = config
        .resolve_source(&args.from)
        .map_err(|e| UsageError(e.to_string()))?;
    let target_entry = config
        .resolve_target(&args.to)
        .map_err(|e| UsageError(e.to_string()))?;
    let source = open_registry(&source_entry, config)?;
    let target = open_registry(&target_entry, config)?;
    let settings = JobSettings::new(config, global.maxconn, global.retries);
    let platforms = args
        .platform
        .as_deref()
        .or(config.platform.as_deref())
        .map(PlatformFilter::parse_list)
        .transpose()
        .map_err(UsageError)?
        .unwrap_or_default();

    let text = read_list(args.list.as_deref(), &args.images)?;
    let lines = plan::parse_list(&text).map_err(|e| UsageError(explain_plan(&e)))?;
    if lines.is_empty() {
        return Err(UsageError(t!("error.empty_image_list").to_string()).into());
    }
    let endpoint = |registry: &registry::Registry| Endpoint {
        host: registry.endpoint().host.clone(),
        path_prefix: registry.endpoint().path_prefix.clone(),
    };
    let options = ListOptions {
        source: Some(endpoint(&source)),
        target: Some(endpoint(&target)),
        target_namespace: target_entry.repository.clone().filter(|n| !n.is_empty()),
    };
    let (pairs, invalid) = plan::plan(&lines, &options);

    // One clear error for an unreachable registry or a wrong password, not one per image.
    if let Some(first) = pairs.first() {
        source
            .check(&first.source.repository, false)
            .await
            .map_err(|e| RunError(explain_registry(&e)))?;
        target
            .check(&first.target.repository, true)
            .await
            .map_err(|e| RunError(explain_registry(&e)))?;
    }

    let cancel = CancellationToken::new();
    watch_interrupts(cancel.clone());
    let progress = Progress::new();
    let observers = Observers::new().with(progress.clone());
    let job = CopyJob::new(
        Arc::new(RegistrySource::new(source.clone())),
        Arc::new(RegistryDestination::new(target.clone())),
        CopyOptions {
            max_connections: settings.max_connections,
            retries: settings.retries,
            platforms,
            platform_as_manifest: args.platform_as_manifest,
            ..CopyOptions::default()
        },
        Arc::new(observers),
        cancel,
    );
    let ticker_stop = CancellationToken::new();
    let ticker = progress.spawn_ticker(ticker_stop.clone());
    let report = job.run(pairs, invalid).await;
    ticker_stop.cancel();
    let _ = ticker.await;

    if let Some(path) = &global.json {
        crate::report::write(path, "copy", source.host(), target.host(), &report)?;
    }
    Ok(finish(&report))
}

/// Ctrl-C stops the job cleanly: in-flight uploads are abandoned and no tag is pushed for an
/// unfinished image. A second Ctrl-C leaves at once.
pub(crate) fn watch_interrupts(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}
