//! One file per subcommand; this module holds what they share: opening registries from
//! cfg.yaml entries, reading image lists, running the job (and notifying about it), and the
//! job's closing summary.

pub(crate) mod cache;
pub(crate) mod copy;
pub(crate) mod demo;
pub(crate) mod load;
pub(crate) mod pipeline;
pub(crate) mod save;
pub(crate) mod serve;
pub(crate) mod ui;
pub(crate) mod upload;
pub(crate) mod verify;
pub(crate) mod watch;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
pub(crate) use engine::Sink;
use engine::cache::{BlobCache, CacheLimits, CachingSource};
use engine::plan::{self, ImagePair, InvalidLine, RegistryAddress};
use engine::transport::ImageSource;
use engine::{CopyJob, CopyOptions, JobReport, Observers, PlatformFilter};
use registry::{Credentials, Registry, RegistryOptions, RetryPolicy, TlsOptions};
use rust_i18n::t;
use tokio_util::sync::CancellationToken;

use crate::cli::{SourceTls, TargetTls, TransferOptions};
use crate::config::{CacheConfig, Config, RegistryEntry};
use crate::event_stream::EventStream;
use crate::messages::{explain, explain_for, explain_plan};
use crate::notify::{EachImage, Notifier};
use crate::printer::{alert, problem, say};
use crate::progress::Progress;
use crate::status_format::format_bytes;

/// A failure the user caused by how the tool was called or configured: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// A failure found before any image moved (unreachable registry, wrong password): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RunError(pub(crate) String);

/// Settings of a job after cfg.yaml, flags and defaults are combined.
#[derive(Debug, Clone)]
pub(crate) struct JobSettings {
    pub(crate) max_connections: usize,
    pub(crate) retries: u32,
    /// How long a transfer may move nothing before it is abandoned (and retried).
    pub(crate) stall_timeout: Duration,
    /// cfg.yaml `cache:`: blobs read through it when set.
    pub(crate) cache: Option<CacheConfig>,
    /// cfg.yaml's robots and webhooks, told when the job ends.
    pub(crate) notifier: Notifier,
    /// Tell the robots of each image as it finishes too (watch).
    pub(crate) notify_each_image: bool,
    /// The job's total bandwidth cap, bytes a second.
    pub(crate) limit_rate: Option<u64>,
    /// Upload chunk size for registries written to; none: one request per blob until a
    /// connection breaks.
    pub(crate) chunk_size: Option<u64>,
}

impl JobSettings {
    pub(crate) fn new(config: &Config, flags: &TransferOptions) -> JobSettings {
        JobSettings {
            max_connections: flags.maxconn.filter(|n| *n > 0).unwrap_or(config.maxconn),
            retries: flags.retries.unwrap_or(config.retries),
            stall_timeout: Duration::from_secs(
                flags
                    .stall_timeout
                    .filter(|n| *n > 0)
                    .unwrap_or(config.stalltimeout),
            ),
            cache: config.cache.clone(),
            notifier: Notifier::from_config(config),
            notify_each_image: false,
            limit_rate: flags.limit_rate.or(config.limitrate),
            chunk_size: flags.chunk_size.or(config.chunksize),
        }
    }
}

impl JobSettings {
    /// How the engine runs a job of these settings, keeping `platforms` of multi-platform
    /// images.
    pub(crate) fn copy_options(
        &self,
        platforms: Vec<PlatformFilter>,
        platform_as_manifest: bool,
    ) -> CopyOptions {
        CopyOptions {
            max_connections: self.max_connections,
            retries: self.retries,
            stall_timeout: self.stall_timeout,
            platforms,
            platform_as_manifest,
            rate_limit: self.limit_rate.map(engine::rate::RateLimit::new),
            ..CopyOptions::default()
        }
    }
}

/// Checks once, before any image, that the source answers and takes the login and that the
/// target accepts a push: one clear error for an unreachable registry or a wrong password, not
/// one per image. Each side is checked on the repository the first image uses.
pub(crate) async fn check_both_sides(
    source: Option<(&Registry, &str)>,
    target: Option<(&Registry, &str)>,
    settings: &JobSettings,
) -> anyhow::Result<()> {
    if let Some((registry, repository)) = source {
        check_source(registry, repository, settings).await?;
    }
    if let Some((registry, repository)) = target {
        registry
            .check(repository, true)
            .await
            .map_err(|e| RunError(crate::messages::explain_registry(&e)))?;
    }
    Ok(())
}

/// The source registry a `--from` names (a cfg.yaml name or an address), opened, trusted as
/// `--src-tls-verify` / `--src-cert-dir` say where given.
pub(crate) fn open_source(
    config: &Config,
    settings: &JobSettings,
    name: &str,
    tls: &SourceTls,
) -> anyhow::Result<(RegistryEntry, Registry)> {
    let mut entry = config
        .resolve_source(name)
        .map_err(|e| UsageError(e.to_string()))?;
    if let Some(directory) = &tls.cert_dir {
        entry.cacert = Some(directory.clone());
    }
    let registry = open_registry_verifying(&entry, config, settings, tls.verify)?;
    Ok((entry, registry))
}

/// The target registry a `--to` names, opened, with `--dest-tls-verify` / `--dest-cert-dir`.
pub(crate) fn open_target(
    config: &Config,
    settings: &JobSettings,
    name: &str,
    tls: &TargetTls,
) -> anyhow::Result<(RegistryEntry, Registry)> {
    let mut entry = config
        .resolve_target(name)
        .map_err(|e| UsageError(e.to_string()))?;
    if let Some(directory) = &tls.cert_dir {
        entry.cacert = Some(directory.clone());
    }
    let registry = open_registry_verifying(&entry, config, settings, tls.verify)?;
    Ok((entry, registry))
}

/// `--platform`, else cfg.yaml `platform`: the platforms to keep from multi-platform images.
pub(crate) fn platform_filters(
    flag: Option<&str>,
    config: &Config,
) -> anyhow::Result<Vec<PlatformFilter>> {
    Ok(flag
        .or(config.platform.as_deref())
        .map(PlatformFilter::parse_list)
        .transpose()
        .map_err(UsageError)?
        .unwrap_or_default())
}

/// Checks once, before any image, that the source answers and takes the login. With a blob
/// cache a source that cannot be reached is only a warning: the cache may hold every image.
pub(crate) async fn check_source(
    registry: &Registry,
    repository: &str,
    settings: &JobSettings,
) -> anyhow::Result<()> {
    match registry.check(repository, false).await {
        Ok(()) => Ok(()),
        Err(error) if settings.cache.is_some() && error.is_retryable() => {
            alert!(
                "{}",
                t!(
                    "cache.source_unreachable",
                    detail = crate::messages::explain_registry(&error)
                )
            );
            Ok(())
        }
        Err(error) => Err(RunError(crate::messages::explain_registry(&error)).into()),
    }
}

/// Opens a registry as a cfg.yaml entry describes it.
pub(crate) fn open_registry(entry: &RegistryEntry, config: &Config) -> anyhow::Result<Registry> {
    let settings = JobSettings::new(config, &TransferOptions::default());
    open_registry_verifying(entry, config, &settings, None)
}

/// Opens a registry; `verify`, from the command line, wins over cfg.yaml's TLS settings.
fn open_registry_verifying(
    entry: &RegistryEntry,
    config: &Config,
    settings: &JobSettings,
    verify: Option<bool>,
) -> anyhow::Result<Registry> {
    let stall_timeout = settings.stall_timeout;
    let credentials = match (&entry.user, &entry.password) {
        // As in the original, both must be set; otherwise Docker's own login is used.
        (Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => {
            Some(Credentials {
                username: user.clone(),
                password: password.clone(),
            })
        }
        _ => None,
    };
    let options = RegistryOptions {
        address: entry.registry.clone(),
        credentials,
        tls: TlsOptions {
            ca_certificate: entry.cacert.clone(),
            skip_verify: verify.map_or(
                entry.skiptlsverify || entry.insecure || config.skiptlsverify,
                |verify| !verify,
            ),
        },
        retry: RetryPolicy::default(),
        // Twice the job's stall limit: the job notices a stalled blob first and names the side;
        // this ends any other request that stalls.
        read_timeout: Some(stall_timeout * 2),
        // Half of it: a download that stops moving is resumed on a new connection before the
        // job would give the blob up as stalled.
        stalled_read: Some(stall_timeout / 2),
        upload_chunk: settings.chunk_size,
        use_docker_config: true,
        http_fallback: true,
    };
    Registry::new(options)
        .map_err(|error| UsageError(crate::messages::explain_registry(&error)).into())
}

/// The list's lines: read as [`read_list`] does, normalised, and not empty.
pub(crate) fn read_lines(file: Option<&Path>, arguments: &[String]) -> anyhow::Result<Vec<String>> {
    let text = read_list(file, arguments)?;
    let lines = plan::parse_list(&text).map_err(|e| UsageError(explain_plan(&e)))?;
    if lines.is_empty() {
        return Err(UsageError(t!("error.empty_image_list").to_string()).into());
    }
    Ok(lines)
}

/// How an image list addresses a registry: its host and path prefix.
pub(crate) fn list_endpoint(registry: &Registry) -> RegistryAddress {
    RegistryAddress {
        host: registry.endpoint().host.clone(),
        path_prefix: registry.endpoint().path_prefix.clone(),
    }
}

/// Runs a copy job with the status line, Ctrl-C handling, blob cache and end-of-job
/// notification every command shares; `command` names the job in the notification.
pub(crate) async fn run_job(
    command: &'static str,
    source: Arc<dyn ImageSource>,
    sink: Sink,
    options: CopyOptions,
    settings: &JobSettings,
    pairs: Vec<ImagePair>,
    invalid: Vec<InvalidLine>,
) -> JobReport {
    let cache = settings.cache.as_ref().and_then(open_cache);
    let in_use = cache.as_ref().and_then(|cache| {
        evict(cache);
        cache.use_shared().ok()
    });
    let source: Arc<dyn ImageSource> = match &cache {
        Some(cache) => Arc::new(CachingSource::new(source, cache.clone())),
        None => source,
    };

    let source_name = source.describe();
    let target_name = match &sink {
        Sink::Pieces(destination) => destination.describe(),
        Sink::Whole(loader) => loader.describe(),
    };

    let cancel = CancellationToken::new();
    // A caller that stops the job gracefully handles the signals itself.
    if options.stop_starting.is_none() {
        watch_interrupts(cancel.clone());
    }
    let progress = Progress::new();
    let mut observers = Observers::new().with(progress.clone());
    let stream = crate::event_stream::enabled().then(EventStream::new);
    if let Some(stream) = &stream {
        observers.push(stream.clone());
    }
    let each_image = (settings.notify_each_image && !settings.notifier.is_empty())
        .then(|| EachImage::new(settings.notifier.clone(), command));
    if let Some(each_image) = &each_image {
        observers.push(each_image.clone());
    }
    let observers = Arc::new(observers);
    let job = CopyJob::new(source, sink, options, observers, cancel);
    let ticker_stop = CancellationToken::new();
    let ticker = progress.spawn_ticker(ticker_stop.clone());
    let stream_ticker =
        stream.map(|stream| stream.spawn_ticker(progress.clone(), ticker_stop.clone()));
    let report = job.run(pairs, invalid).await;
    ticker_stop.cancel();
    let _ = ticker.await;
    if let Some(stream_ticker) = stream_ticker {
        let _ = stream_ticker.await;
    }

    let mut report = report;
    if let Some(cache) = &cache {
        drop(in_use);
        report.cache = Some(cache.stats());
        evict(cache);
    }
    if let Some(each_image) = each_image {
        each_image.flush().await;
    }
    settings
        .notifier
        .job_finished(command, &source_name, &target_name, &report)
        .await;
    report
}

/// The blob cache cfg.yaml asks for; a cache that cannot be opened is warned about and left
/// out, since it only ever saves downloads.
pub(crate) fn open_cache(config: &CacheConfig) -> Option<Arc<BlobCache>> {
    match BlobCache::open(&config.pathname, cache_limits(config)) {
        Ok(cache) => Some(Arc::new(cache)),
        Err(error) => {
            alert!(
                "{}",
                t!(
                    "cache.unusable",
                    path = config.pathname.display(),
                    detail = explain(&error)
                )
            );
            None
        }
    }
}

pub(crate) fn cache_limits(config: &CacheConfig) -> CacheLimits {
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    CacheLimits {
        keep_for: (config.keepdays > 0).then(|| DAY * config.keepdays),
        keep_bytes: (config.keep_bytes > 0).then_some(config.keep_bytes),
    }
}

/// Applies the cache's limits, saying so when it removed anything.
fn evict(cache: &BlobCache) {
    match cache.evict() {
        Ok(eviction) if eviction.removed > 0 => say!(
            "{}",
            t!(
                "cache.evicted",
                count = eviction.removed,
                size = format_bytes(eviction.removed_bytes)
            )
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %explain(&error), "cache eviction failed"),
    }
}

/// Ctrl-C, SIGTERM from a service manager, or Stop on the web UI's page: the ways a command is
/// told to stop.
pub(crate) async fn stop_signal() {
    tokio::select! {
        _ = terminal_stop_signal() => {}
        _ = crate::event_stream::stop_requested() => {}
    }
}

async fn terminal_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    // Ctrl-Break too, and the console window being closed: a double-clicked program's window is
    // its only control, and Windows gives a closing program a few seconds to finish cleanly.
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close};
        let pressed_break = async {
            match ctrl_break() {
                Ok(mut signal) => signal.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        let window_closed = async {
            match ctrl_close() {
                Ok(mut signal) => signal.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = pressed_break => {}
            _ = window_closed => {}
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A stop signal stops the job cleanly: in-flight uploads are abandoned and no tag is pushed for
/// an unfinished image. A second Ctrl-C leaves at once.
fn watch_interrupts(cancel: CancellationToken) {
    tokio::spawn(async move {
        stop_signal().await;
        tracing::warn!("interrupted");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

/// Reads the image list: from a file, standard input (`-`, or when nothing else is given and
/// input is piped), or the command's arguments. Files and piped text may be UTF-8 or UTF-16
/// with a byte-order mark ([`crate::text_file`]).
fn read_list(file: Option<&Path>, arguments: &[String]) -> anyhow::Result<String> {
    let mut text = arguments.join("\n");
    let from_file = match file {
        Some(path) if path == Path::new("-") => Some(read_stdin()?),
        Some(path) => Some(crate::text_file::read(path).map_err(|e| {
            UsageError(
                t!(
                    "error.read_list",
                    path = path.display(),
                    detail = e.to_string()
                )
                .to_string(),
            )
        })?),
        // A job the web UI started keeps standard input for stop requests.
        None if arguments.is_empty()
            && !std::io::stdin().is_terminal()
            && !crate::event_stream::enabled() =>
        {
            Some(read_stdin()?)
        }
        None => None,
    };
    if let Some(listed) = from_file {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&listed);
    }
    Ok(text)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context(t!("error.read_stdin").to_string())?;
    crate::text_file::decode(&bytes)
        .map_err(|e| UsageError(format!("{}: {e}", t!("error.read_stdin"))).into())
}

/// Prints the closing summary (totals, invalid and failed images) and picks the exit status.
pub(crate) fn finish(report: &JobReport) -> ExitCode {
    let total = report.images.len() + report.invalid.len();
    say!(
        "{}",
        t!(
            "summary.totals",
            total = total,
            succeeded = report.succeeded(),
            failed = report.failed(),
            invalid = report.invalid.len()
        )
    );
    if let Some(stats) = &report.cache {
        say!(
            "{}",
            t!(
                "cache.summary",
                hits = stats.hits,
                saved = format_bytes(stats.bytes_saved),
                stored = stats.stored
            )
        );
        if stats.manifests_offline > 0 {
            say!(
                "{}",
                t!("cache.offline_manifests", count = stats.manifests_offline)
            );
        }
    }
    if !report.invalid.is_empty() {
        problem!("{}", t!("summary.invalid_images"));
        for (line, error) in &report.invalid {
            problem!("  {line}: {}", explain_for(line, error));
        }
    }
    let failed: Vec<_> = report
        .images
        .iter()
        .filter_map(|image| match &image.status {
            engine::ImageStatus::Failed { error } => Some((image, error)),
            engine::ImageStatus::Succeeded { .. } => None,
        })
        .collect();
    if !failed.is_empty() {
        problem!("{}", t!("summary.failed_images"));
        for (image, error) in failed {
            problem!("  {}: {}", image.source, explain_for(&image.source, error));
        }
    }
    if report.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
