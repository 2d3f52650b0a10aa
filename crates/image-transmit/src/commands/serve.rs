//! `serve META… [--listen ADDR]`: bundles on the jump host as a read-only registry, so
//! air-gapped nodes pull from it directly instead of waiting for an upload into a registry.
//! This file opens the bundles, binds the address and says where it listens; the protocol is
//! in `crate::registry_server`.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;

use engine::CopyOptions;
use engine::bundle::chain::BundleChain;
use engine::bundle::reader::BundleReader;
use engine::plan::{ListOptions, plan_line};
use engine::precheck::lacking_blobs;
use rust_i18n::t;
use tokio::net::TcpListener;

use super::{RunError, UsageError};
use crate::cli::ServeArgs;
use crate::messages::explain;
use crate::printer::{alert, say};
use crate::registry_server::{Catalog, serve};

pub(crate) async fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut readers = Vec::with_capacity(args.metas.len());
    for meta in &args.metas {
        readers.push(open(meta.clone()).await?);
    }
    for reader in &readers {
        super::upload::warn_rewritten(reader);
    }
    let keys: Vec<Vec<String>> = readers.iter().map(BundleReader::image_keys).collect();
    // Later bundles win: listed as they were made (`data/*/img_*_meta.yaml` sorts a base before
    // its increments), an increment that re-saved a tag answers for it.
    readers.reverse();
    let mut readers = readers.into_iter();
    let top = readers
        .next()
        .ok_or_else(|| UsageError(t!("serve.no_bundle").to_string()))?;
    let chain = BundleChain::new(top, readers.collect());
    warn_about_missing_base_blobs(&chain, &args.metas, &keys).await?;

    let listener = TcpListener::bind(&args.listen).await.map_err(|e| {
        let message = t!(
            "serve.bind_failed",
            address = args.listen,
            detail = e.to_string()
        )
        .to_string();
        if e.kind() == ErrorKind::InvalidInput {
            anyhow::Error::from(UsageError(message))
        } else {
            anyhow::Error::from(RunError(message))
        }
    })?;
    // The real address: `--listen 127.0.0.1:0` picks a free port, and the caller needs it.
    let address = listener.local_addr()?;
    say!(
        "{}",
        t!(
            "serve.listening",
            count = args.metas.len(),
            url = format!("http://{address}")
        )
    );
    serve(listener, Catalog::new(chain), stop_requested()).await?;
    say!("{}", t!("serve.stopped"));
    Ok(ExitCode::SUCCESS)
}

/// Opens a bundle off the async thread: the original's bundles are indexed by scanning their
/// parts.
async fn open(meta: PathBuf) -> anyhow::Result<BundleReader> {
    let reader = tokio::task::spawn_blocking(move || BundleReader::open(&meta)).await?;
    reader.map_err(|e| RunError(explain(&e)).into())
}

/// An increment served without its base cannot give the blobs it left to the base; saying so
/// at start beats a node failing halfway through a pull. The same check as before any job
/// ([`lacking_blobs`]), with nothing at the destination: a pulling node is assumed to have
/// nothing yet.
async fn warn_about_missing_base_blobs(
    chain: &BundleChain,
    metas: &[PathBuf],
    keys: &[Vec<String>],
) -> anyhow::Result<()> {
    let pairs: Vec<_> = keys
        .iter()
        .flatten()
        .filter_map(|key| plan_line(key, &ListOptions::default()).ok())
        .collect();
    let lacking = lacking_blobs(chain, None, &CopyOptions::default(), &pairs)
        .await
        .map_err(|e| RunError(explain(&e)))?;
    for (meta, keys) in metas.iter().zip(keys) {
        let count = lacking
            .iter()
            .filter(|blob| keys.contains(&blob.line))
            .map(|blob| &blob.digest)
            .collect::<HashSet<_>>()
            .len();
        if count > 0 {
            alert!(
                "{}",
                t!(
                    "serve.missing_base_blobs",
                    meta = meta.display(),
                    count = count
                )
            );
        }
    }
    Ok(())
}

/// Ctrl-C (or SIGTERM from a service manager) stops the server; requests in flight finish.
/// A second Ctrl-C leaves at once, for a client that keeps a slow download open.
async fn stop_requested() {
    super::stop_signal().await;
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}
