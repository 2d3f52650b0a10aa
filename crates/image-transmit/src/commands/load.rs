//! `load` (and the legacy `-dst=docker` / `-dst=ctr`, with `-img=META` or `-src -lst`): images
//! into the local Docker or containerd, each streamed in as one archive, from a bundle (with
//! its bases, when it is incremental) or straight from a registry.
//!
//! Loaded images are named `HOST/PATH:TAG`: HOST is the `registry:` of a cfg.yaml target
//! entry named like the engine (`docker`, `ctr`, `containerd`) when there is one, else the
//! source registry's host, as the original named them; PATH is the planned target path, so
//! `->` renames and that entry's `repository:` apply (the original ignored both).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use engine::CopyOptions;
use engine::bundle::chain::BundleChain;
use engine::bundle::reader::BundleReader;
use engine::plan::{self, Endpoint, ImagePair, InvalidLine, ListOptions};
use engine::transport::ImageSource;
use engine::transport::containerd::Containerd;
use engine::transport::docker_daemon::DockerDaemon;
use engine::transport::registry::RegistrySource;
use engine::{JobReport, PlatformFilter};
use rust_i18n::t;

use super::upload::{refuse_damaged_parts, warn_rewritten};
use super::{
    JobSettings, RunError, Sink, UsageError, check_source, finish, list_endpoint, open_source,
    platform_filters, read_lines, run_job,
};
use crate::cli::LoadArgs;
use crate::config::Config;
use crate::messages::explain;

/// The engines `--to` (and the legacy `-dst`) may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Docker,
    Containerd,
}

impl Engine {
    pub(crate) fn parse(name: &str) -> Option<Engine> {
        match name.to_ascii_lowercase().as_str() {
            "docker" => Some(Engine::Docker),
            "ctr" | "containerd" => Some(Engine::Containerd),
            _ => None,
        }
    }
}

/// The engine opened and asked for its platform, so a stopped daemon is one clear error.
pub(crate) struct OpenedEngine {
    pub(crate) sink: Sink,
    pub(crate) platform: PlatformFilter,
    pub(crate) name: &'static str,
}

/// Opens an engine: `address` (the Docker API's, or containerd's socket), containerd's
/// `namespace` and `snapshotter`, each else from the environment, else the default.
pub(crate) async fn open_engine(
    engine: Engine,
    address: Option<String>,
    namespace: Option<String>,
    snapshotter: Option<String>,
) -> anyhow::Result<OpenedEngine> {
    let fail = |error: engine::Error| RunError(explain(&error));
    match engine {
        Engine::Docker => {
            let daemon = match &address {
                Some(address) => DockerDaemon::new(address),
                None => DockerDaemon::from_env(),
            }
            .map_err(|e| UsageError(explain(&e)))?;
            let platform = daemon.platform().await.map_err(fail)?;
            Ok(OpenedEngine {
                sink: Sink::Whole(Arc::new(daemon)),
                platform,
                name: "docker",
            })
        }
        Engine::Containerd => {
            let containerd = Containerd {
                ctr: PathBuf::from("ctr"),
                // As `ctr` itself: the flag, then its environment, then the default.
                address: address
                    .or_else(|| non_empty_env("CONTAINERD_ADDRESS"))
                    .unwrap_or_else(|| Containerd::DEFAULT_ADDRESS.to_string()),
                namespace: namespace
                    .or_else(|| non_empty_env("CONTAINERD_NAMESPACE"))
                    .unwrap_or_else(|| Containerd::DEFAULT_NAMESPACE.to_string()),
                snapshotter,
            };
            containerd.check().await.map_err(fail)?;
            Ok(OpenedEngine {
                sink: Sink::Whole(Arc::new(containerd)),
                platform: host_platform(),
                name: "containerd",
            })
        }
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The platform of this machine, in OCI's words: what containerd runs here.
fn host_platform() -> PlatformFilter {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    PlatformFilter {
        os: "linux".to_string(),
        architecture: architecture.to_string(),
        variant: None,
    }
}

pub(crate) async fn run(args: &LoadArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let engine = Engine::parse(&args.to)
        .ok_or_else(|| UsageError(t!("error.unknown_engine", name = args.to).to_string()))?;
    let settings = JobSettings::new(config, &args.transfer);
    // A target entry named like the engine gives loaded names their host and namespace.
    let naming = config.find_target(&args.to).ok();
    let naming_host = naming
        .and_then(|entry| entry.registry.parse::<Endpoint>().ok())
        .map(|endpoint| endpoint.to_string());
    let list_options = ListOptions {
        source: None,
        target: None,
        target_namespace: naming
            .and_then(|entry| entry.repository.clone())
            .filter(|namespace| !namespace.is_empty()),
    };

    // The engine first: without it nothing else matters.
    let opened = open_engine(
        engine,
        args.address.clone(),
        args.namespace.clone(),
        args.snapshotter.clone(),
    )
    .await?;
    let planned = match &args.from {
        Some(from) => plan_from_registry(args, config, &settings, from, list_options).await?,
        None => plan_from_bundle(args, &list_options)?,
    };

    let chosen = platform_filters(args.platform.as_deref(), config)?;
    let platform_key = if chosen.is_empty() {
        "load.platform"
    } else {
        "load.platform_chosen"
    };
    let platforms = match chosen.as_slice() {
        [] => vec![opened.platform.clone()],
        chosen => chosen.to_vec(),
    };
    let platform_label = platforms
        .iter()
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "{}",
        t!(
            platform_key,
            platform = platform_label,
            engine = opened.name
        )
    );
    let options = CopyOptions {
        max_connections: settings.max_connections,
        retries: settings.retries,
        stall_timeout: settings.stall_timeout,
        platforms,
        loaded_name_host: naming_host.or(planned.host),
        ..CopyOptions::default()
    };
    let report = run_job(
        "load",
        planned.source,
        opened.sink,
        options,
        &settings,
        planned.pairs,
        planned.invalid,
    )
    .await;
    write_report(args, &planned.described, opened.name, &report)?;
    Ok(finish(&report))
}

/// What to load, from where, and the host loaded names start with by default.
struct Planned {
    source: Arc<dyn ImageSource>,
    pairs: Vec<ImagePair>,
    invalid: Vec<InvalidLine>,
    host: Option<String>,
    /// The source, for the report.
    described: String,
}

async fn plan_from_registry(
    args: &LoadArgs,
    config: &Config,
    settings: &JobSettings,
    from: &str,
    list_options: ListOptions,
) -> anyhow::Result<Planned> {
    let (_, registry) = open_source(config, settings, from, &args.source_tls)?;
    let lines = read_lines(args.list.as_deref(), &args.inputs)?;
    let endpoint = list_endpoint(&registry);
    let options = ListOptions {
        source: Some(endpoint.clone()),
        ..list_options
    };
    let (pairs, invalid) = plan::plan(&lines, &options);
    if let Some(first) = pairs.first() {
        check_source(&registry, &first.source.repository, settings).await?;
    }
    Ok(Planned {
        source: Arc::new(RegistrySource::new(registry.clone())),
        pairs,
        invalid,
        host: Some(endpoint.host),
        described: registry.host().to_string(),
    })
}

fn plan_from_bundle(args: &LoadArgs, list_options: &ListOptions) -> anyhow::Result<Planned> {
    let [meta] = args.inputs.as_slice() else {
        return Err(UsageError(t!("load.needs_one_source").to_string()).into());
    };
    let meta = Path::new(meta);
    let (chain, keys) = open_chain(meta, &args.base)?;
    let lines = match &args.list {
        None => keys,
        Some(list) => read_lines(Some(list), &[])?,
    };
    let (pairs, invalid) = plan::plan(&lines, list_options);
    let host = pairs.iter().find_map(|pair| key_host(&pair.source_text));
    Ok(Planned {
        source: Arc::new(chain),
        pairs,
        invalid,
        host,
        described: meta.display().to_string(),
    })
}

fn write_report(
    args: &LoadArgs,
    source: &str,
    engine: &str,
    report: &JobReport,
) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        crate::report::write(path, "load", source, engine, report)?;
    }
    Ok(())
}

/// The bundle and its bases as one source, after checking that their data files are whole and
/// that together they carry every blob the bundle's images need. Also the bundle's image keys.
fn open_chain(meta: &Path, bases: &[PathBuf]) -> anyhow::Result<(BundleChain, Vec<String>)> {
    let open = |path: &Path| -> anyhow::Result<BundleReader> {
        refuse_damaged_parts(path)?;
        Ok(BundleReader::open(path).map_err(|e| RunError(explain(&e)))?)
    };
    let top = open(meta)?;
    warn_rewritten(&top);
    let keys = top.image_keys();
    let bases = bases
        .iter()
        .map(|base| open(base))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chain = BundleChain::new(top, bases);
    let missing = chain.missing_blobs();
    if !missing.is_empty() {
        let lines: Vec<String> = missing.iter().map(|d| format!("  {d}")).collect();
        return Err(RunError(format!(
            "{}\n{}",
            t!("load.missing_blobs", count = missing.len()),
            lines.join("\n")
        ))
        .into());
    }
    Ok((chain, keys))
}

/// The registry host of a bundle's image key (`http://10.0.0.1:5000/team/app:1`), if it has
/// one: the name the original gave loaded images started with it.
pub(crate) fn key_host(key: &str) -> Option<String> {
    let name = key
        .split_once("://")
        .map_or(key, |(_, rest)| rest)
        .trim_start_matches('/');
    let (host, _) = registry::reference::split_host(name);
    host.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_by_their_names() {
        assert_eq!(Engine::parse("docker"), Some(Engine::Docker));
        assert_eq!(Engine::parse("ctr"), Some(Engine::Containerd));
        assert_eq!(Engine::parse("Containerd"), Some(Engine::Containerd));
        assert_eq!(Engine::parse("gz"), None);
    }

    #[test]
    fn the_host_of_a_bundle_key() {
        assert_eq!(
            key_host("http://10.0.0.1:5000/team/app:1").as_deref(),
            Some("10.0.0.1:5000")
        );
        assert_eq!(
            key_host("harbor.local/team/app:1").as_deref(),
            Some("harbor.local")
        );
        assert_eq!(key_host("team/app:1"), None);
    }
}
