//! `load` (and the legacy `-dst=docker` / `-dst=ctr`, with `-img=META` or `-src -lst`): images
//! into the local Docker or containerd, each streamed in as one archive, from a bundle (with
//! its bases, when it is incremental) or straight from a registry.
//!
//! Loaded images are named `HOST/PATH:TAG`: HOST is the `registry:` of a cfg.yaml target
//! entry named like the engine (`docker`, `ctr`, `containerd`) when there is one, else the
//! source registry's host, as the original named them; PATH is the planned target path, so
//! `->` renames and that entry's `repository:` apply (the original ignored both).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use engine::PlatformFilter;
use engine::transport::Location;
use engine::transport::containerd::Containerd;
use engine::transport::docker_daemon::DockerDaemon;
use rust_i18n::t;

use super::pipeline::{self, JobRequest, parse_source};
use super::{JobSettings, RunError, Sink, UsageError};
pub(crate) use crate::cli::Engine;
use crate::cli::LoadArgs;
use crate::config::Config;
use crate::messages::explain;

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
    let engine = args.to;
    let destination = match engine {
        Engine::Docker => Location::DockerDaemon {
            address: args.address.clone(),
        },
        Engine::Containerd => Location::Containerd {
            namespace: args.namespace.clone(),
        },
    };
    // From a registry the words are images; else the one word is a bundle, whose images
    // `--list` may pick.
    let (source, images) = match (&args.from, args.inputs.as_slice()) {
        (Some(from), images) => (parse_source(from, config)?, images.to_vec()),
        (None, [meta]) => (Location::Bundle(meta.into()), Vec::new()),
        (None, _) => return Err(UsageError(t!("load.needs_one_source").to_string()).into()),
    };
    let settings = JobSettings::new(config, &args.transfer);
    let mut request = JobRequest::new("load", source, destination);
    request.list = args.list.clone();
    request.images = images;
    request.platform = args.platform.clone();
    request.source_tls = args.source_tls.clone();
    request.json = args.json.clone();
    request.bases = args.base.clone();
    request.snapshotter = args.snapshotter.clone();
    // With `--address`, the engine's socket is containerd's too.
    if engine == Engine::Containerd {
        request.containerd_address = args.address.clone();
    }
    pipeline::run(request, config, &settings).await
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
