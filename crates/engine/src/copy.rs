//! The copy job: every mode's one operation. It resolves each planned image on the source,
//! reports the missing ones up front, then moves the rest with a global limit on concurrent
//! blob transfers, a blob shared by several images moved once, retries with backoff, and
//! cancellation that never leaves a tag pointing at an incomplete image.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use futures_util::{StreamExt, stream};
use registry::manifest::{self, Descriptor, ImageManifest, ParsedManifest};
use registry::{Digest, RetryPolicy};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::checked_stream::{StreamFailure, Verifier};
use crate::error::{Error, Result};
use crate::events::{BlobOutcome, Event, ImageId, Observer};
use crate::lock;
use crate::plan::{ImageName, ImagePair, InvalidLine};
use crate::stall::{Liveness, StallSide};
use crate::transport::{
    ByteStream, ImageDestination, ImageLoader, ImageSource, Manifest, ManifestRole,
};

mod load;

/// How long a blob transfer may go without moving a byte, unless configured otherwise.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Images worked on at once for each blob transfer place (`maxconn`); see `images_in_flight`.
const IMAGES_PER_TRANSFER: usize = 4;

/// How a job runs.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// The most blob transfers in flight at once, over all images (cfg `maxconn`).
    pub max_connections: usize,
    /// Extra attempts per image after a retryable failure (cfg `retries`).
    pub retries: u32,
    /// Waits between image attempts.
    pub backoff: RetryPolicy,
    /// Platforms to keep from multi-platform images; empty keeps all.
    pub platforms: Vec<PlatformFilter>,
    /// With exactly one platform selected, push that platform's manifest under the tag instead
    /// of a one-entry index.
    pub platform_as_manifest: bool,
    /// Put before the target name of an image loaded into a container engine (Docker,
    /// containerd): the registry host the image is known by there.
    pub loaded_name_host: Option<String>,
    /// A blob transfer in which no byte moves for this long is abandoned (and retried as
    /// `retries` allows), naming the side that stopped.
    pub stall_timeout: Duration,
    /// When cancelled, images not yet started are left out of the job while those in flight
    /// finish: the graceful stop of a daemon, where the job's own cancellation abandons them.
    pub stop_starting: Option<CancellationToken>,
    /// The job's total bandwidth cap, shared by every transfer (`--limit-rate`).
    pub rate_limit: Option<Arc<crate::rate::RateLimit>>,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            max_connections: 5,
            retries: 2,
            backoff: RetryPolicy {
                retries: 2,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
            },
            platforms: Vec::new(),
            platform_as_manifest: false,
            loaded_name_host: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            stop_starting: None,
            rate_limit: None,
        }
    }
}

/// `os/architecture[/variant]`, as given to `--platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFilter {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl FromStr for PlatformFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<PlatformFilter, String> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        match parts.as_slice() {
            [os, architecture] | [os, architecture, _]
                if !os.is_empty() && !architecture.is_empty() =>
            {
                Ok(PlatformFilter {
                    os: os.to_string(),
                    architecture: architecture.to_string(),
                    variant: parts.get(2).map(|v| v.to_string()),
                })
            }
            _ => Err(format!(
                "invalid platform {text:?}: expected os/architecture[/variant], e.g. linux/amd64"
            )),
        }
    }
}

impl PlatformFilter {
    /// Parses a comma list such as `linux/amd64,linux/arm64`.
    pub fn parse_list(text: &str) -> Result<Vec<PlatformFilter>, String> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect()
    }

    fn matches(&self, platform: &manifest::Platform) -> bool {
        self.os == platform.os
            && self.architecture == platform.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| platform.variant.as_deref() == Some(v.as_str()))
    }
}

/// The children of an index that `platforms` keep (all when it is empty); none is an error that
/// names what the index offers.
pub(crate) fn select_children<'a>(
    platforms: &[PlatformFilter],
    children: &'a [Descriptor],
    label: &str,
) -> Result<Vec<&'a Descriptor>> {
    if platforms.is_empty() {
        return Ok(children.iter().collect());
    }
    let selected: Vec<&Descriptor> = children
        .iter()
        .filter(|child| {
            child
                .platform
                .as_ref()
                .is_some_and(|platform| platforms.iter().any(|f| f.matches(platform)))
        })
        .collect();
    if selected.is_empty() {
        let available: Vec<String> = children
            .iter()
            .filter_map(|c| c.platform.as_ref().map(manifest::Platform::label))
            .collect();
        let wanted: Vec<String> = platforms
            .iter()
            .map(|f| match &f.variant {
                Some(variant) => format!("{}/{}/{variant}", f.os, f.architecture),
                None => format!("{}/{}", f.os, f.architecture),
            })
            .collect();
        return Err(Error::NoMatchingPlatform {
            reference: label.to_string(),
            wanted: wanted.join(","),
            available: available.join(","),
        });
    }
    Ok(selected)
}

/// The reference to push the final manifest under: the tag, or for a digest reference the
/// digest of what is pushed (a filtered index has its own).
fn target_reference(target: &ImageName, digest: &Digest) -> String {
    match &target.reference {
        registry::reference::Target::Digest(_) => digest.to_string(),
        tag => tag.to_string(),
    }
}

/// The result of one successful attempt.
struct Copied {
    digest: Digest,
    /// The target already had the image; nothing was sent.
    unchanged: bool,
}

impl Copied {
    fn pushed(digest: &Digest) -> Copied {
        Copied {
            digest: digest.clone(),
            unchanged: false,
        }
    }

    fn unchanged(digest: &Digest) -> Copied {
        Copied {
            digest: digest.clone(),
            unchanged: true,
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone)]
pub enum ImageStatus {
    Succeeded {
        digest: Digest,
        /// The destination had the image already.
        unchanged: bool,
    },
    Failed {
        error: Arc<Error>,
    },
}

#[derive(Debug, Clone)]
pub struct ImageReport {
    pub id: ImageId,
    pub line: String,
    pub source: String,
    pub target: String,
    pub status: ImageStatus,
    /// The bytes of the image's blobs (the platforms chosen), as its last attempt counted them.
    pub size: u64,
    /// From the image's start to its end, retries included.
    pub elapsed: Duration,
}

/// The outcome of a whole job.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    pub images: Vec<ImageReport>,
    /// Lines that could not be planned or resolved, with why.
    pub invalid: Vec<(String, Arc<Error>)>,
    pub bytes_transferred: u64,
    pub blobs_transferred: usize,
    pub blobs_existing: usize,
    pub blobs_mounted: usize,
    pub elapsed: Duration,
    pub cancelled: bool,
    /// What the blob cache saved, when the job read through one.
    pub cache: Option<crate::cache::CacheStats>,
}

impl JobReport {
    pub fn succeeded(&self) -> usize {
        self.images
            .iter()
            .filter(|i| matches!(i.status, ImageStatus::Succeeded { .. }))
            .count()
    }

    pub fn failed(&self) -> usize {
        self.images.len() - self.succeeded()
    }

    /// True when every listed image arrived.
    pub fn all_done(&self) -> bool {
        self.invalid.is_empty() && self.failed() == 0 && !self.cancelled
    }
}

/// Per-digest state shared by every image of the job: which destination repositories hold the
/// blob, and a lock so that only one image moves it while the others wait and then mount.
#[derive(Default)]
struct BlobLedger {
    entries: Mutex<HashMap<Digest, Arc<LedgerEntry>>>,
}

#[derive(Default)]
struct LedgerEntry {
    busy: tokio::sync::Mutex<()>,
    landed_in: Mutex<Vec<String>>,
}

impl BlobLedger {
    fn entry(&self, digest: &Digest) -> Arc<LedgerEntry> {
        lock(&self.entries)
            .entry(digest.clone())
            .or_default()
            .clone()
    }
}

#[derive(Default)]
struct Counters {
    bytes: std::sync::atomic::AtomicU64,
    transferred: std::sync::atomic::AtomicUsize,
    existing: std::sync::atomic::AtomicUsize,
    mounted: std::sync::atomic::AtomicUsize,
}

/// Where a job puts images: somewhere that takes blobs and manifests one by one (a registry, a
/// bundle), or a container engine that takes each image whole, as one archive.
#[derive(Clone)]
pub enum Sink {
    Pieces(Arc<dyn ImageDestination>),
    Whole(Arc<dyn ImageLoader>),
}

impl Sink {
    fn describe(&self) -> String {
        match self {
            Sink::Pieces(destination) => destination.describe(),
            Sink::Whole(loader) => loader.describe(),
        }
    }
}

/// A copy from one source to one destination.
pub struct CopyJob {
    source: Arc<dyn ImageSource>,
    sink: Sink,
    options: CopyOptions,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
    transfers: Semaphore,
    ledger: BlobLedger,
    counters: Counters,
    /// Each image's size, as its [`Event::ImageSized`] said, for its report.
    sizes: Mutex<HashMap<ImageId, u64>>,
}

/// An image that exists on the source.
struct Resolved {
    id: ImageId,
    pair: ImagePair,
    /// The source manifest, unless looking it up failed in a way a retry may mend; then each
    /// attempt fetches it.
    manifest: Option<Manifest>,
}

impl CopyJob {
    pub fn new(
        source: Arc<dyn ImageSource>,
        sink: Sink,
        options: CopyOptions,
        observer: Arc<dyn Observer>,
        cancel: CancellationToken,
    ) -> Arc<CopyJob> {
        let permits = options.max_connections.max(1);
        Arc::new(CopyJob {
            source,
            sink,
            options,
            observer,
            cancel,
            transfers: Semaphore::new(permits),
            ledger: BlobLedger::default(),
            counters: Counters::default(),
            sizes: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the job to the end (or to cancellation) and reports every image.
    pub async fn run(
        self: &Arc<Self>,
        pairs: Vec<ImagePair>,
        invalid: Vec<InvalidLine>,
    ) -> JobReport {
        let started = Instant::now();
        let mut report = JobReport::default();
        for line in invalid {
            let error = Arc::new(Error::from(line.reason));
            self.emit(Event::ImageInvalid {
                line: line.line.clone(),
                error: error.clone(),
            });
            report.invalid.push((line.line, error));
        }

        let resolved = tokio::select! {
            resolved = self.resolve_all(pairs, &mut report) => resolved,
            _ = self.cancel.cancelled() => Vec::new(),
        };
        self.emit(Event::JobStarted {
            images: resolved.len(),
        });

        let mut running = tokio::task::JoinSet::new();
        let mut waiting = resolved.into_iter();
        for image in waiting.by_ref().take(self.images_in_flight()) {
            let job = self.clone();
            running.spawn(async move { job.copy_image(image).await });
        }
        while let Some(finished) = running.join_next().await {
            match finished {
                Ok(image_report) => report.images.push(image_report),
                Err(panic) => tracing::error!(%panic, "image task ended abnormally"),
            }
            let stopping = self
                .options
                .stop_starting
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled);
            if !stopping && let Some(image) = waiting.next() {
                let job = self.clone();
                running.spawn(async move { job.copy_image(image).await });
            }
        }
        report.images.sort_by_key(|image| image.id);

        use std::sync::atomic::Ordering::Relaxed;
        report.bytes_transferred = self.counters.bytes.load(Relaxed);
        report.blobs_transferred = self.counters.transferred.load(Relaxed);
        report.blobs_existing = self.counters.existing.load(Relaxed);
        report.blobs_mounted = self.counters.mounted.load(Relaxed);
        report.cancelled = self.cancel.is_cancelled();
        report.elapsed = started.elapsed();
        self.emit(Event::JobDone);
        report
    }

    /// How many images are worked on at once: several per blob transfer place, so that over a
    /// long link the round trips of many images (manifest lookups, blob checks, mounts, opening
    /// uploads, tags) overlap, while bytes move in at most `maxconn` transfers.
    /// A daemon that may be stopped gracefully (`stop_starting`) keeps to `maxconn` images: its
    /// stop lets the images in flight finish, and those should be the ones moving bytes, not
    /// many more waiting for a place.
    fn images_in_flight(&self) -> usize {
        let per_transfer = if self.options.stop_starting.is_some() {
            1
        } else {
            IMAGES_PER_TRANSFER
        };
        self.options.max_connections.max(1) * per_transfer
    }

    fn emit(&self, event: Event) {
        if let Event::ImageSized { image, bytes } = &event {
            lock(&self.sizes).insert(*image, *bytes);
        }
        self.observer.event(&event);
    }

    /// Fetches every source manifest before anything moves, concurrently, so missing images
    /// are reported up front and not halfway through a long job.
    async fn resolve_all(&self, pairs: Vec<ImagePair>, report: &mut JobReport) -> Vec<Resolved> {
        let lookups = stream::iter(pairs.into_iter().enumerate())
            .map(|(id, pair)| async move {
                let result = self
                    .source
                    .manifest(&pair.source.repository, &pair.source.reference.to_string())
                    .await;
                (id, pair, result)
            })
            .buffered(self.images_in_flight());
        let results: Vec<_> = lookups.collect().await;
        let mut resolved = Vec::new();
        for (id, pair, result) in results {
            match result {
                Ok(manifest) => resolved.push(Resolved {
                    id,
                    pair,
                    manifest: Some(manifest),
                }),
                // A busy or flaky source is not a missing image: the image's retries apply.
                Err(error) if error.is_retryable() => resolved.push(Resolved {
                    id,
                    pair,
                    manifest: None,
                }),
                Err(error) => {
                    let error = Arc::new(error);
                    self.emit(Event::ImageInvalid {
                        line: pair.line.clone(),
                        error: error.clone(),
                    });
                    report.invalid.push((pair.line, error));
                }
            }
        }
        resolved
    }

    async fn copy_image(self: Arc<Self>, image: Resolved) -> ImageReport {
        let started = Instant::now();
        let source = format!("{}/{}", self.source.describe(), image.pair.source);
        // An engine is told the exact name to tag; that name is what the user will run.
        let target = match &self.sink {
            Sink::Whole(_) => self.loaded_name(&image),
            Sink::Pieces(_) => format!("{}/{}", self.sink.describe(), image.pair.target),
        };
        self.emit(Event::ImageStarted {
            image: image.id,
            line: image.pair.line.clone(),
            source: source.clone(),
            target: target.clone(),
        });
        let status = match self.copy_with_retries(&image).await {
            Ok(Copied { digest, unchanged }) => {
                self.emit(Event::ImageDone {
                    image: image.id,
                    digest: digest.clone(),
                    unchanged,
                });
                ImageStatus::Succeeded { digest, unchanged }
            }
            Err(error) => {
                let error = Arc::new(error);
                self.emit(Event::ImageFailed {
                    image: image.id,
                    error: error.clone(),
                });
                ImageStatus::Failed { error }
            }
        };
        let size = lock(&self.sizes).remove(&image.id).unwrap_or(0);
        ImageReport {
            id: image.id,
            line: image.pair.line,
            source,
            target,
            status,
            size,
            elapsed: started.elapsed(),
        }
    }

    async fn copy_with_retries(&self, image: &Resolved) -> Result<Copied> {
        let mut attempt = 0;
        loop {
            let outcome = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Err(Error::Cancelled),
                outcome = self.copy_once(image) => outcome,
            };
            match outcome {
                Err(error) if error.is_retryable() && attempt < self.options.retries => {
                    attempt += 1;
                    let delay = self.options.backoff.delay(attempt);
                    self.emit(Event::ImageRetrying {
                        image: image.id,
                        attempt,
                        delay,
                        error: Arc::new(error),
                    });
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt at one image: nothing if the target already has it, else blobs first,
    /// then child manifests by digest, the tag last.
    async fn copy_once(&self, image: &Resolved) -> Result<Copied> {
        let destination = match &self.sink {
            Sink::Pieces(destination) => destination.as_ref(),
            Sink::Whole(loader) => return self.load_once(loader.as_ref(), image).await,
        };
        let source = &image.pair.source;
        let target = &image.pair.target;
        let label = format!("{}/{}", self.source.describe(), source);
        let label = label.as_str();
        let top = &self.top_manifest(image).await?;
        let index = match manifest::parse(&top.media_type, &top.bytes, label)? {
            ParsedManifest::Image(parsed) => {
                let reference = target_reference(target, &top.digest);
                if self
                    .up_to_date(destination, target, &reference, &top.digest)
                    .await?
                {
                    return Ok(Copied::unchanged(&top.digest));
                }
                self.ensure_blobs(destination, image.id, source, target, parsed.blobs())
                    .await?;
                self.push_manifest(destination, target, &reference, top, ManifestRole::Top)
                    .await?;
                return Ok(Copied::pushed(&top.digest));
            }
            ParsedManifest::Index(index) => index,
        };

        let children = self.select_children(&index.manifests, label)?;
        let single = self.options.platform_as_manifest && children.len() == 1;
        let filtered = children.len() != index.manifests.len();
        // What the tag will name is known before any child is fetched, so an image the target
        // already has costs one HEAD.
        let final_top = if single || !filtered {
            top.clone()
        } else {
            let keep: Vec<Digest> = children.iter().map(|c| c.digest.clone()).collect();
            let bytes = manifest::filter_index(&top.bytes, &keep, label)?;
            Manifest {
                digest: Digest::of(&bytes),
                bytes: bytes.into(),
                media_type: top.media_type.clone(),
            }
        };
        let final_digest = if single {
            children[0].digest.clone()
        } else {
            final_top.digest.clone()
        };
        let reference = target_reference(target, &final_digest);
        if self
            .up_to_date(destination, target, &reference, &final_digest)
            .await?
        {
            return Ok(Copied::unchanged(&final_digest));
        }
        if filtered && !single {
            self.emit(Event::IndexFiltered {
                image: image.id,
                original: top.digest.clone(),
                filtered: final_digest.clone(),
                platforms: children
                    .iter()
                    .filter_map(|c| c.platform.as_ref().map(manifest::Platform::label))
                    .collect(),
            });
        }

        let fetched = try_join_all(
            children
                .iter()
                .map(|child| self.fetch_child(source, child, label)),
        )
        .await?;
        let blobs = fetched.iter().flat_map(|(_, parsed)| parsed.blobs());
        self.ensure_blobs(destination, image.id, source, target, blobs)
            .await?;
        if single {
            let (child, _) = &fetched[0];
            self.push_manifest(destination, target, &reference, child, ManifestRole::Top)
                .await?;
            return Ok(Copied::pushed(&child.digest));
        }
        for (child, _) in &fetched {
            self.push_manifest(
                destination,
                target,
                child.digest.as_str(),
                child,
                ManifestRole::Child,
            )
            .await?;
        }
        self.push_manifest(
            destination,
            target,
            &reference,
            &final_top,
            ManifestRole::Top,
        )
        .await?;
        Ok(Copied::pushed(&final_digest))
    }

    /// The manifest the image's source reference names: resolved up front, or fetched now when
    /// that lookup failed in a way a retry may mend.
    async fn top_manifest(&self, image: &Resolved) -> Result<Manifest> {
        match &image.manifest {
            Some(manifest) => Ok(manifest.clone()),
            None => {
                let source = &image.pair.source;
                self.source
                    .manifest(&source.repository, &source.reference.to_string())
                    .await
            }
        }
    }

    async fn fetch_child(
        &self,
        source: &ImageName,
        child: &Descriptor,
        label: &str,
    ) -> Result<(Manifest, ImageManifest)> {
        let manifest = self
            .source
            .manifest(&source.repository, child.digest.as_str())
            .await?;
        match manifest::parse(&manifest.media_type, &manifest.bytes, label)? {
            ParsedManifest::Image(parsed) => Ok((manifest, parsed)),
            ParsedManifest::Index(_) => {
                Err(Error::Registry(registry::Error::UnsupportedManifest {
                    reference: label.to_string(),
                    media_type: "an index nested in an index".into(),
                }))
            }
        }
    }

    /// Whether the target already names exactly this manifest, in which case the image is
    /// complete there (a registry accepts a manifest only once its blobs and children exist).
    async fn up_to_date(
        &self,
        destination: &dyn ImageDestination,
        target: &ImageName,
        reference: &str,
        digest: &Digest,
    ) -> Result<bool> {
        let present = destination
            .manifest_digest(&target.repository, reference)
            .await?;
        Ok(present.as_ref() == Some(digest))
    }

    fn select_children<'a>(
        &self,
        children: &'a [Descriptor],
        label: &str,
    ) -> Result<Vec<&'a Descriptor>> {
        select_children(&self.options.platforms, children, label)
    }

    async fn push_manifest(
        &self,
        destination: &dyn ImageDestination,
        target: &ImageName,
        reference: &str,
        manifest: &Manifest,
        role: ManifestRole,
    ) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        destination
            .put_manifest(&target.repository, reference, manifest, role)
            .await
    }

    async fn ensure_blobs<'a>(
        &self,
        destination: &dyn ImageDestination,
        image: ImageId,
        source: &ImageName,
        target: &ImageName,
        blobs: impl Iterator<Item = &'a Descriptor>,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        let unique: Vec<&Descriptor> = blobs.filter(|b| seen.insert(b.digest.clone())).collect();
        self.emit(Event::ImageSized {
            image,
            // Sizes come from the source: a hostile one must not overflow the total.
            bytes: unique
                .iter()
                .fold(0u64, |total, b| total.saturating_add(b.size)),
        });
        try_join_all(
            unique
                .into_iter()
                .map(|blob| self.ensure_blob(destination, image, source, target, blob)),
        )
        .await?;
        Ok(())
    }

    /// Makes sure the target repository holds a blob: already there, mounted from where this
    /// job put it before, or transferred (once, while other images needing it wait).
    async fn ensure_blob(
        &self,
        destination: &dyn ImageDestination,
        image: ImageId,
        source: &ImageName,
        target: &ImageName,
        blob: &Descriptor,
    ) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let entry = self.ledger.entry(&blob.digest);
        let repository = &target.repository;
        let done = |outcome| {
            let counter = match outcome {
                BlobOutcome::Transferred => &self.counters.transferred,
                BlobOutcome::Existed => &self.counters.existing,
                BlobOutcome::Mounted => &self.counters.mounted,
            };
            counter.fetch_add(1, Relaxed);
            lock(&entry.landed_in).push(repository.clone());
            self.emit(Event::BlobDone {
                image,
                digest: blob.digest.clone(),
                size: blob.size,
                outcome,
            });
        };
        // Already put somewhere by this job: linked here without the blob's lock, so that the
        // many images sharing a base layer mount it side by side (one round trip each) instead
        // of one after another.
        let mut mounted_from = None;
        let _busy = loop {
            let landed: Vec<String> = lock(&entry.landed_in).clone();
            if landed.contains(repository) {
                done(BlobOutcome::Existed);
                return Ok(());
            }
            if let Some(from) = landed.first()
                && mounted_from.is_none()
            {
                if destination.mount_blob(repository, blob, from).await? {
                    done(BlobOutcome::Mounted);
                    return Ok(());
                }
                mounted_from = Some(from.clone());
            }
            let busy = entry.busy.lock().await;
            // Landed while this image waited for the lock: mount it as above.
            if mounted_from.is_none() && !lock(&entry.landed_in).is_empty() {
                drop(busy);
                continue;
            }
            break busy;
        };
        let landed: Vec<String> = lock(&entry.landed_in).clone();
        if landed.contains(repository) {
            done(BlobOutcome::Existed);
            return Ok(());
        }
        if destination.has_blob(repository, blob).await? {
            done(BlobOutcome::Existed);
            return Ok(());
        }
        // Where this job put it before (unless tried above), then where the source says it
        // already is.
        let candidates = landed
            .first()
            .cloned()
            .into_iter()
            .chain(self.source.mount_hints(&blob.digest))
            .filter(|from| from != repository && Some(from) != mounted_from.as_ref());
        for from in candidates {
            if destination.mount_blob(repository, blob, &from).await? {
                done(BlobOutcome::Mounted);
                return Ok(());
            }
        }
        destination.prepare_blob(repository, blob).await?;
        let _permit = self
            .transfers
            .acquire()
            .await
            .map_err(|_| Error::Cancelled)?;
        self.emit(Event::BlobStarted {
            image,
            digest: blob.digest.clone(),
            size: blob.size,
        });
        self.transfer(destination, image, source, target, blob)
            .await?;
        done(BlobOutcome::Transferred);
        Ok(())
    }

    /// A blob whose content is wrong. From a source that knows where the blob lies (a bundle's
    /// data file), that place is named and no retry is made: reading it again gives the same.
    fn content_error(&self, blob: &Descriptor, error: registry::Error) -> Error {
        let damaged = matches!(
            error,
            registry::Error::DigestMismatch { .. } | registry::Error::SizeMismatch { .. }
        );
        match self.source.blob_origin(&blob.digest) {
            Some(origin) if damaged => Error::DamagedBlob {
                digest: blob.digest.clone(),
                origin,
                error: Box::new(error),
            },
            _ => Error::from(error),
        }
    }

    /// `content` held to the job's rate limit, if it has one.
    fn limited(&self, content: ByteStream) -> ByteStream {
        limited(self.options.rate_limit.as_ref(), content)
    }

    /// Streams one blob, retrying a broken or stalled transfer from the start (as many times
    /// as `retries` allows, at most three tries) before the failure goes up to the image's own
    /// retries.
    async fn transfer(
        &self,
        destination: &dyn ImageDestination,
        image: ImageId,
        source: &ImageName,
        target: &ImageName,
        blob: &Descriptor,
    ) -> Result<()> {
        let attempts = 1 + self.options.retries.min(2);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let liveness = Arc::new(Liveness::new());
            let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let moved = async {
                let content = self.source.blob(&source.repository, blob).await?;
                let content = self.limited(content);
                liveness.waiting_for_source(false);
                liveness.progressed();
                let observer = self.observer.clone();
                let counter = counted.clone();
                let failure = StreamFailure::default();
                let verifier = Verifier::new(
                    blob,
                    Box::new(move |bytes| {
                        counter.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                        observer.event(&Event::BlobProgress { image, bytes });
                    }),
                    failure.clone(),
                )
                .watched_by(liveness.clone());
                let again = ReadAgain {
                    source: self.source.as_ref(),
                    rate_limit: self.options.rate_limit.as_ref(),
                    repository: &source.repository,
                    blob,
                    verifier: verifier.clone(),
                };
                destination
                    .put_blob_resuming(
                        &target.repository,
                        blob,
                        verifier.stream(0, content).boxed(),
                        &again,
                    )
                    .await
                    // When the content itself failed (bad digest, broken source), say that
                    // rather than what the destination made of its aborted body.
                    .map_err(|error| match failure.take() {
                        Some(content) => self.content_error(blob, content),
                        None => error,
                    })
            };
            let outcome = tokio::select! {
                outcome = moved => outcome,
                side = liveness.stalled(self.options.stall_timeout) => Err(Error::Stalled {
                    origin: match side {
                        StallSide::Source => self.source.describe(),
                        StallSide::Destination => destination.describe(),
                    },
                    side,
                    digest: blob.digest.clone(),
                    seconds: self.options.stall_timeout.as_secs().max(1),
                }),
            };
            self.counters.bytes.fetch_add(
                counted.load(std::sync::atomic::Ordering::Relaxed),
                std::sync::atomic::Ordering::Relaxed,
            );
            match outcome {
                Err(error)
                    if error.is_retryable()
                        && attempt < attempts
                        && !self.cancel.is_cancelled() =>
                {
                    tracing::debug!(%error, digest = %blob.digest, "retrying blob");
                    tokio::time::sleep(self.options.backoff.delay(attempt) / 4).await;
                }
                outcome => return outcome,
            }
        }
    }
}

fn limited(rate_limit: Option<&Arc<crate::rate::RateLimit>>, content: ByteStream) -> ByteStream {
    match rate_limit {
        Some(limit) => limit.limit(content),
        None => content,
    }
}

/// A blob's bytes read again from its source, for a destination that continues a broken
/// upload: held to the same rate limit and checked with the same running hash as the first
/// reading.
struct ReadAgain<'a> {
    source: &'a dyn ImageSource,
    rate_limit: Option<&'a Arc<crate::rate::RateLimit>>,
    repository: &'a str,
    blob: &'a Descriptor,
    verifier: Verifier,
}

impl registry::BodyFrom for ReadAgain<'_> {
    fn body_from(
        &self,
        offset: u64,
    ) -> futures_util::future::BoxFuture<'_, registry::Result<registry::BlobBody>> {
        Box::pin(async move {
            let content = self
                .source
                .blob_from(self.repository, self.blob, offset)
                .await
                .map_err(|error| match error {
                    Error::Registry(error) => error,
                    other => registry::Error::Transfer {
                        host: self.source.describe(),
                        detail: other.to_string(),
                    },
                })?;
            let content = limited(self.rate_limit, content);
            Ok(self.verifier.stream(offset, content).boxed())
        })
    }
}
