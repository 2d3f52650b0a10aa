//! `cache ls` and `cache prune`: what the blob cache holds, and its limits applied now (every
//! job also applies them when it starts and ends).

use std::process::ExitCode;

use engine::cache::BlobCache;
use rust_i18n::t;

use super::{RunError, UsageError, cache_limits};
use crate::cli::{CacheAction, CacheArgs};
use crate::config::{CacheConfig, Config};
use crate::messages::explain;
use crate::printer::say;
use crate::status_format::format_bytes;

pub(crate) fn run(args: &CacheArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let settings = match (&args.path, &config.cache) {
        (Some(path), Some(configured)) => CacheConfig {
            pathname: path.clone(),
            ..configured.clone()
        },
        (Some(path), None) => CacheConfig {
            pathname: path.clone(),
            ..crate::config::CacheConfig::defaults()
        },
        (None, Some(configured)) => configured.clone(),
        (None, None) => return Err(UsageError(t!("cache.not_configured").to_string()).into()),
    };
    let cache = BlobCache::open(&settings.pathname, cache_limits(&settings))
        .map_err(|e| RunError(explain(&e)))?;
    match args.action {
        CacheAction::Ls => list(&cache, &settings),
        CacheAction::Prune => prune(&cache),
    }
}
fn list(cache: &BlobCache, settings: &CacheConfig) -> anyhow::Result<ExitCode> {
    let entries = cache.entries().map_err(|e| RunError(explain(&e)))?;
    for entry in &entries {
        say!(
            "{}",
            t!(
                "cache.entry",
                digest = entry.digest,
                size = format_bytes(entry.size),
                used = chrono::DateTime::<chrono::Utc>::from(entry.last_used)
                    .format("%Y-%m-%d %H:%M:%S UTC")
            )
        );
    }
    say!(
        "{}",
        t!(
            "cache.listing",
            path = cache.root().display(),
            count = entries.len(),
            size = format_bytes(entries.iter().map(|e| e.size).sum()),
            days = settings.keepdays,
            limit = format_bytes(settings.keep_bytes)
        )
    );
    Ok(ExitCode::SUCCESS)
}
fn prune(cache: &BlobCache) -> anyhow::Result<ExitCode> {
    let eviction = cache.evict().map_err(|e| RunError(explain(&e)))?;
    if !eviction.ran {
        return Err(RunError(t!("cache.in_use").to_string()).into());
    }
    say!(
        "{}",
        t!(
            "cache.pruned",
            count = eviction.removed,
            size = format_bytes(eviction.removed_bytes),
            kept = eviction.kept,
            kept_size = format_bytes(eviction.kept_bytes)
        )
    );
    Ok(ExitCode::SUCCESS)
}
