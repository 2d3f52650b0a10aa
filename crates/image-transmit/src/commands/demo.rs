//! `demo`: the whole offline path on this machine alone, in a few seconds. It builds a small
//! image, saves it to a bundle, serves that bundle as a registry, copies the image from the
//! server into a second bundle, verifies both bundles, and checks that every step kept the
//! digest. Nothing outside a temporary directory is touched; no service or network is needed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use engine::bundle::archive::EntryLayout;
use engine::bundle::meta::BundleMeta;
use engine::bundle::reader::BundleReader;
use engine::bundle::verify::verify_bundle;
use engine::bundle::writer::{BundleWriter, BundleWriterOptions, Compression};
use engine::plan::{ImageName, ImagePair};
use engine::sample::write_sample_layout;
use engine::transport::ImageSource;
use engine::transport::oci_layout::OciLayoutSource;
use engine::transport::registry::RegistrySource;
use engine::{CopyJob, CopyOptions, Observers, Sink};
use registry::reference::Target;
use registry::{Digest, Registry, RegistryOptions};
use rust_i18n::t;
use tokio_util::sync::CancellationToken;

use super::RunError;
use crate::messages::explain;
use crate::printer::say;
use crate::registry_server::{Catalog, serve};
use engine::bundle::chain::BundleChain;

/// Removes the demo's directory however the demo ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.0);
    }
}

const REPOSITORY: &str = "demo/hello";
const TAG: &str = "1.0";

pub(crate) async fn run() -> anyhow::Result<ExitCode> {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("image-transmit-demo-{}", std::process::id())));
    let work = scratch.0.clone();
    let fail = |error: engine::Error| RunError(explain(&error));

    let layout = work.join("layout");
    let sample = write_sample_layout(&layout, REPOSITORY, TAG).map_err(fail)?;
    say!(
        "1. {}",
        t!(
            "demo.built",
            image = format!("{REPOSITORY}:{TAG}"),
            layers = sample.layers,
            size = sample.size,
            digest = sample.digest.short()
        )
    );

    let source = OciLayoutSource::open(&layout).map_err(fail)?;
    let first = save(Arc::new(source), &work.join("bundle"), "demo.local").await?;
    say!("2. {}", t!("demo.saved", path = first.display()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let reader = BundleReader::open(&first).map_err(fail)?;
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(serve(
        listener,
        Catalog::new(BundleChain::new(reader, Vec::new())),
        async move { stopped.cancelled().await },
    ));
    let url = format!("http://{address}");
    say!("3. {}", t!("demo.served", url = url));

    let registry = Registry::new(RegistryOptions {
        address: url.clone(),
        ..RegistryOptions::default()
    })
    .map_err(|e| fail(e.into()))?;
    let served = registry
        .head_manifest(REPOSITORY, TAG, false)
        .await
        .map_err(|e| fail(e.into()))?;
    let second = save(
        Arc::new(RegistrySource::new(registry)),
        &work.join("copy"),
        &url,
    )
    .await?;
    stop.cancel();
    let _ = server.await;
    say!(
        "4. {}",
        t!("demo.copied", url = url, path = second.display())
    );

    let digests = [
        Some(sample.digest.clone()),
        bundled_digest(&first),
        served,
        bundled_digest(&second),
    ];
    if digests.iter().all(|d| d.as_ref() == Some(&sample.digest)) {
        say!("5. {}", t!("demo.verified", digest = sample.digest));
        say!("   {}", t!("demo.cleaned", path = work.display()));
        Ok(ExitCode::SUCCESS)
    } else {
        let seen: Vec<String> = digests
            .iter()
            .map(|d| d.as_ref().map_or("-".to_string(), ToString::to_string))
            .collect();
        Err(RunError(t!("demo.mismatch", digests = seen.join(", ")).to_string()).into())
    }
}

/// Copies the sample image from `source` into a new bundle in `directory`, verifies the
/// bundle, and returns its meta file.
async fn save(
    source: Arc<dyn ImageSource>,
    directory: &Path,
    key_prefix: &str,
) -> anyhow::Result<PathBuf> {
    let fail = |error: engine::Error| RunError(explain(&error));
    let writer = Arc::new(
        BundleWriter::new(BundleWriterOptions {
            directory: directory.to_path_buf(),
            work_name: "img_full_demo".to_string(),
            parallel_parts: 1,
            split_size: None,
            key_prefix: key_prefix.to_string(),
            bases: Vec::new(),
            layout: EntryLayout::Original,
            compression: Compression::None,
            fast: false,
            archive_only: false,
        })
        .map_err(fail)?,
    );
    let name = ImageName {
        repository: REPOSITORY.to_string(),
        reference: Target::Tag(TAG.to_string()),
    };
    let pair = ImagePair {
        line: format!("{REPOSITORY}:{TAG}"),
        source_text: format!("{REPOSITORY}:{TAG}"),
        source: name.clone(),
        target: name,
    };
    let job = CopyJob::new(
        source,
        Sink::Pieces(writer.clone()),
        CopyOptions::default(),
        Arc::new(Observers::new()),
        CancellationToken::new(),
    );
    let report = job.run(vec![pair], Vec::new()).await;
    if let Some((_, error)) = report.invalid.first() {
        return Err(RunError(explain(error)).into());
    }
    if let Some(engine::ImageStatus::Failed { error }) = report.images.first().map(|i| &i.status) {
        return Err(RunError(explain(error)).into());
    }
    let meta = writer.finish_bundle().await.map_err(fail)?;
    let check = verify_bundle(&meta).map_err(fail)?;
    if !check.findings.is_empty() {
        return Err(RunError(t!("demo.bundle_faulty", path = meta.display()).to_string()).into());
    }
    Ok(meta)
}

/// The digest of the one image a demo bundle holds.
fn bundled_digest(meta: &Path) -> Option<Digest> {
    let meta = BundleMeta::read(meta).ok()?;
    let text = meta.manifests.values().next()?;
    Some(Digest::of(text.as_bytes()))
}
