//! One file per subcommand; this module holds what they share: opening registries from
//! cfg.yaml entries, reading image lists, and the job's closing summary.
#![allow(clippy::print_stdout)]

pub(crate) mod copy;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use engine::JobReport;
use registry::{Credentials, Registry, RegistryOptions, RetryPolicy, TlsOptions};
use rust_i18n::t;

use crate::config::{Config, RegistryEntry};
use crate::messages::explain;

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
}

impl JobSettings {
    pub(crate) fn new(
        config: &Config,
        maxconn: Option<usize>,
        retries: Option<u32>,
    ) -> JobSettings {
        JobSettings {
            max_connections: maxconn.filter(|n| *n > 0).unwrap_or(config.maxconn),
            retries: retries.unwrap_or(config.retries),
        }
    }
}

/// Opens a registry as a cfg.yaml entry describes it.
pub(crate) fn open_registry(entry: &RegistryEntry, config: &Config) -> anyhow::Result<Registry> {
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
            skip_verify: entry.skiptlsverify || entry.insecure || config.skiptlsverify,
        },
        retry: RetryPolicy::default(),
        use_docker_config: true,
        http_fallback: true,
    };
    Registry::new(options)
        .map_err(|error| UsageError(crate::messages::explain_registry(&error)).into())
}

/// Reads the image list: from a file, standard input (`-`, or when nothing else is given and
/// input is piped), or the command's arguments.
pub(crate) fn read_list(file: Option<&Path>, arguments: &[String]) -> anyhow::Result<String> {
    let mut text = arguments.join("\n");
    match file {
        Some(path) if path == Path::new("-") => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context(t!("error.read_stdin").to_string())?;
        }
        Some(path) => {
            let content = fs_err::read(path).map_err(|e| {
                UsageError(
                    t!(
                        "error.read_list",
                        path = path.display(),
                        detail = e.to_string()
                    )
                    .to_string(),
                )
            })?;
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&content));
        }
        None if arguments.is_empty() && !std::io::stdin().is_terminal() => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context(t!("error.read_stdin").to_string())?;
        }
        None => {}
    }
    Ok(text)
}

/// Prints the closing summary (totals, invalid and failed images) and picks the exit status.
pub(crate) fn finish(report: &JobReport) -> ExitCode {
    let total = report.images.len() + report.invalid.len();
    println!(
        "{}",
        t!(
            "summary.totals",
            total = total,
            succeeded = report.succeeded(),
            failed = report.failed(),
            invalid = report.invalid.len()
        )
    );
    if !report.invalid.is_empty() {
        println!("{}", t!("summary.invalid_images"));
        for (line, error) in &report.invalid {
            println!("  {line}: {}", explain(error));
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
        println!("{}", t!("summary.failed_images"));
        for (image, error) in failed {
            println!("  {}: {}", image.source, explain(error));
        }
    }
    if report.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
