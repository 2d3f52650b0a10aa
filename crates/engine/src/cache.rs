//! The blob cache (cfg `cache:`): a content-addressed directory of blobs already downloaded,
//! so that copying the same images to several targets, or saving them again tomorrow, reads
//! shared layers from disk instead of the network.
//!
//! A blob is written to a temporary file while it streams, hashed as it is written, and
//! renamed to `sha256/<hex>` only when its digest matches, so the cache never holds a partial
//! or wrong blob under a real name (the original kept truncated files). A cached blob is
//! hashed again as it is read; one that fails is deleted and the read fails in a way the
//! engine retries, which then downloads it afresh.
//!
//! Manifests are kept too (by digest among the blobs, and tag → digest under `refs/`), so a
//! job whose source cannot be reached can still run from the cache alone, with a warning in
//! the log: a second save of yesterday's images on a train, say.
//!
//! Several processes may share one cache. Readers and writers need no lock: names are final
//! only after an atomic rename. Eviction takes `lock` exclusively and every job holds it
//! shared while it runs, so a blob is never deleted under a job that may be reading it; a
//! job that finds the cache in use by another skips eviction that time. Eviction removes
//! blobs not used for `keepdays`, then the least recently used until the cache fits in
//! `keepsize` (the original defined both and never ran either).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use registry::manifest::Descriptor;
use registry::{Digest, DigestHasher};

use crate::error::{Error, Result};
use crate::transport::{ByteStream, ImageSource, Manifest};

/// How much a read from a cached file takes at a time.
const CHUNK: usize = 64 * 1024;
/// A temporary file this old belongs to a process that died: eviction removes it.
const STALE_TEMPORARY: Duration = Duration::from_secs(24 * 3600);

/// What the cache may keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheLimits {
    /// Blobs unused for longer are removed.
    pub keep_for: Option<Duration>,
    /// The most bytes the cache may hold after eviction.
    pub keep_bytes: Option<u64>,
}

/// One blob in the cache.
#[derive(Debug, Clone)]
pub struct CachedBlob {
    pub digest: Digest,
    pub size: u64,
    pub last_used: SystemTime,
}

/// What an eviction did.
#[derive(Debug, Clone, Default)]
pub struct Eviction {
    /// False when another job was using the cache, so nothing was removed.
    pub ran: bool,
    pub removed: usize,
    pub removed_bytes: u64,
    pub kept: usize,
    pub kept_bytes: u64,
}

/// Hits and misses of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Manifests read from the cache because the source could not be reached.
    pub manifests_offline: usize,
    /// Blobs read from the cache instead of the source.
    pub hits: usize,
    /// Bytes the source did not have to send.
    pub bytes_saved: u64,
    /// Blobs downloaded and added to the cache.
    pub stored: usize,
}

#[derive(Debug)]
pub struct BlobCache {
    root: PathBuf,
    limits: CacheLimits,
    hits: AtomicUsize,
    bytes_saved: AtomicU64,
    stored: AtomicUsize,
    manifests_offline: AtomicUsize,
}

/// Held while a job uses the cache: eviction by another process waits for it to end.
#[derive(Debug)]
pub struct CacheInUse {
    _lock: File,
}

impl BlobCache {
    /// Opens (creating if needed) the cache in `root`.
    pub fn open(root: &Path, limits: CacheLimits) -> Result<BlobCache> {
        for directory in [root.join("sha256"), root.join("tmp"), root.join("refs")] {
            std::fs::create_dir_all(&directory).map_err(|e| Error::io(&directory, e))?;
        }
        Ok(BlobCache {
            root: root.to_path_buf(),
            limits,
            hits: AtomicUsize::new(0),
            bytes_saved: AtomicU64::new(0),
            stored: AtomicUsize::new(0),
            manifests_offline: AtomicUsize::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            bytes_saved: self.bytes_saved.load(Relaxed),
            stored: self.stored.load(Relaxed),
            manifests_offline: self.manifests_offline.load(Relaxed),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join("lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }

    /// Marks the cache as used by this job until the returned guard is dropped.
    pub fn use_shared(&self) -> Result<CacheInUse> {
        let lock = self.lock_file()?;
        lock.lock_shared()
            .map_err(|e| Error::io(&self.root.join("lock"), e))?;
        Ok(CacheInUse { _lock: lock })
    }

    /// Every blob in the cache, least recently used first.
    pub fn entries(&self) -> Result<Vec<CachedBlob>> {
        let directory = self.root.join("sha256");
        let listing = std::fs::read_dir(&directory).map_err(|e| Error::io(&directory, e))?;
        let mut entries = Vec::new();
        for entry in listing.flatten() {
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(|hex| Digest::from_hex(hex).ok()) else {
                continue;
            };
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            entries.push(CachedBlob {
                digest,
                size: metadata.len(),
                last_used: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        entries.sort_by_key(|entry| entry.last_used);
        Ok(entries)
    }

    /// Applies the limits, unless another job is using the cache right now.
    pub fn evict(&self) -> Result<Eviction> {
        let lock = self.lock_file()?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Eviction::default()),
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(Error::io(&self.root.join("lock"), error));
            }
        }
        let now = SystemTime::now();
        self.remove_stale_temporaries(now);
        let entries = self.entries()?;
        let mut eviction = Eviction {
            ran: true,
            ..Eviction::default()
        };
        let mut total: u64 = entries.iter().map(|entry| entry.size).sum();
        for entry in &entries {
            let too_old = self.limits.keep_for.is_some_and(|keep_for| {
                now.duration_since(entry.last_used)
                    .is_ok_and(|age| age > keep_for)
            });
            let too_big = self.limits.keep_bytes.is_some_and(|limit| total > limit);
            if (too_old || too_big) && self.remove(&entry.digest) {
                total -= entry.size;
                eviction.removed += 1;
                eviction.removed_bytes += entry.size;
            } else {
                eviction.kept += 1;
                eviction.kept_bytes += entry.size;
            }
        }
        Ok(eviction)
    }

    fn remove(&self, digest: &Digest) -> bool {
        match std::fs::remove_file(self.blob_path(digest)) {
            Ok(()) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
            Err(error) => {
                tracing::warn!(%digest, %error, "cannot remove a cached blob");
                false
            }
        }
    }

    fn remove_stale_temporaries(&self, now: SystemTime) {
        let Ok(listing) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in listing.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified)
                        .is_ok_and(|age| age > STALE_TEMPORARY)
                });
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The cached copy of a blob, if there is one of the right size; its use is recorded.
    fn open_cached(&self, descriptor: &Descriptor) -> Option<File> {
        let path = self.blob_path(&descriptor.digest);
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .ok()?;
        if file.metadata().ok()?.len() != descriptor.size {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return None;
        }
        // Least recently used goes first: a hit makes the blob young again.
        let _ = file.set_modified(SystemTime::now());
        Some(file)
    }

    /// Where a tag of `origin`'s `repository` is recorded. Characters a file name cannot hold
    /// everywhere (`:` of a port) are replaced.
    fn ref_path(&self, origin: &str, repository: &str, tag: &str) -> PathBuf {
        let safe = |text: &str| text.replace([':', '\\'], "_");
        let mut path = self.root.join("refs").join(safe(origin));
        for segment in repository.split('/') {
            path.push(safe(segment));
        }
        path.join(safe(tag))
    }

    /// Keeps a manifest the source just sent, for when the source cannot be reached.
    fn remember_manifest(
        &self,
        origin: &str,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) {
        let path = self.blob_path(&manifest.digest);
        if !path.exists() {
            self.write_atomically(&path, &manifest.bytes, &manifest.digest);
        }
        if reference.parse::<Digest>().is_err() {
            let record = format!("{}\n{}\n", manifest.digest, manifest.media_type);
            let ref_path = self.ref_path(origin, repository, reference);
            if let Some(parent) = ref_path.parent()
                && std::fs::create_dir_all(parent).is_ok()
            {
                self.write_atomically(&ref_path, record.as_bytes(), &manifest.digest);
            }
        }
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8], digest: &Digest) {
        let Some((temporary, mut file)) = self.temporary(digest) else {
            return;
        };
        let written = file.write_all(bytes).and_then(|()| file.flush());
        drop(file);
        if written.is_err() || std::fs::rename(&temporary, path).is_err() {
            let _ = std::fs::remove_file(temporary);
        }
    }

    /// The manifest recorded for `reference`, its bytes checked against their digest.
    fn cached_manifest(&self, origin: &str, repository: &str, reference: &str) -> Option<Manifest> {
        let (digest, media_type) = match reference.parse::<Digest>() {
            Ok(digest) => (digest, None),
            Err(_) => {
                let record =
                    std::fs::read_to_string(self.ref_path(origin, repository, reference)).ok()?;
                let mut lines = record.lines();
                let digest = lines.next()?.parse::<Digest>().ok()?;
                (digest, lines.next().map(str::to_string))
            }
        };
        let bytes = std::fs::read(self.blob_path(&digest)).ok()?;
        if Digest::of(&bytes) != digest {
            self.remove(&digest);
            return None;
        }
        let media_type = match media_type {
            Some(media_type) => media_type,
            None => registry::manifest::detect_media_type(None, &bytes, reference).ok()?,
        };
        self.manifests_offline.fetch_add(1, Relaxed);
        Some(Manifest {
            bytes: bytes.into(),
            media_type,
            digest,
        })
    }

    fn temporary(&self, digest: &Digest) -> Option<(PathBuf, BufWriter<File>)> {
        let path = self.root.join("tmp").join(format!(
            "{}.{}.{:016x}",
            digest.hex(),
            std::process::id(),
            fastrand::u64(..)
        ));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => Some((path, BufWriter::with_capacity(CHUNK, file))),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot write to the blob cache");
                None
            }
        }
    }
}

/// A source whose blobs go through the cache: read from it when there, added to it when not.
pub struct CachingSource {
    inner: Arc<dyn ImageSource>,
    cache: Arc<BlobCache>,
}

impl CachingSource {
    pub fn new(inner: Arc<dyn ImageSource>, cache: Arc<BlobCache>) -> CachingSource {
        CachingSource { inner, cache }
    }
}

#[async_trait]
impl ImageSource for CachingSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let origin = self.inner.describe();
        match self.inner.manifest(repository, reference).await {
            Ok(manifest) => {
                self.cache
                    .remember_manifest(&origin, repository, reference, &manifest);
                Ok(manifest)
            }
            // Only a source that cannot answer now: a missing image stays missing.
            Err(error) if error.is_retryable() => {
                match self.cache.cached_manifest(&origin, repository, reference) {
                    Some(manifest) => {
                        tracing::info!(%error, "{origin}/{repository}:{reference} read from the cache: the source did not answer");
                        Ok(manifest)
                    }
                    None => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        if let Some(file) = self.cache.open_cached(descriptor) {
            return Ok(Box::pin(CachedRead {
                file,
                cache: self.cache.clone(),
                descriptor: descriptor.clone(),
                hasher: DigestHasher::new(),
                done: false,
            }));
        }
        let upstream = self.inner.blob(repository, descriptor).await?;
        let temporary = self.cache.temporary(&descriptor.digest);
        Ok(Box::pin(Tee {
            upstream,
            temporary,
            hasher: DigestHasher::new(),
            cache: self.cache.clone(),
            descriptor: descriptor.clone(),
        }))
    }

    fn blob_origin(&self, digest: &Digest) -> Option<String> {
        self.inner.blob_origin(digest)
    }

    fn mount_hints(&self, digest: &Digest) -> Vec<String> {
        self.inner.mount_hints(digest)
    }

    fn carries(&self, digest: &Digest) -> bool {
        self.inner.carries(digest)
    }

    fn may_lack_blobs(&self) -> bool {
        self.inner.may_lack_blobs()
    }
}

/// A cached blob read back, hashed on the way; a wrong one is deleted and fails the read.
struct CachedRead {
    file: File,
    cache: Arc<BlobCache>,
    descriptor: Descriptor,
    hasher: DigestHasher,
    done: bool,
}

impl CachedRead {
    /// Called once the whole size is read: whether the content is the blob. A damaged copy
    /// is removed, so the retry the error causes downloads the blob afresh.
    fn check(&mut self) -> Option<registry::Error> {
        self.done = true;
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual == self.descriptor.digest {
            self.cache.hits.fetch_add(1, Relaxed);
            self.cache
                .bytes_saved
                .fetch_add(self.descriptor.size, Relaxed);
            return None;
        }
        tracing::info!(digest = %self.descriptor.digest, "a cached blob is damaged; fetching it again");
        self.cache.remove(&self.descriptor.digest);
        Some(registry::Error::DigestMismatch {
            expected: self.descriptor.digest.clone(),
            actual,
            bytes: self.descriptor.size,
        })
    }
}

impl Stream for CachedRead {
    type Item = Result<Bytes, registry::Error>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let remaining = this.descriptor.size - this.hasher.len();
        if remaining == 0 {
            // An empty blob: nothing to read, only the digest to check.
            return Poll::Ready(this.check().map(Err));
        }
        let mut buffer = vec![0u8; CHUNK.min(remaining as usize)];
        match this.file.read(&mut buffer) {
            Ok(0) => {
                this.done = true;
                this.cache.remove(&this.descriptor.digest);
                Poll::Ready(Some(Err(registry::Error::SizeMismatch {
                    digest: this.descriptor.digest.clone(),
                    expected: this.descriptor.size,
                    actual: this.hasher.len(),
                })))
            }
            Ok(read) => {
                buffer.truncate(read);
                this.hasher.update(&buffer);
                // Like the engine's own check, the last chunk is held back until it is known
                // to complete the right content: a consumer may stop reading at the size.
                if this.hasher.len() == this.descriptor.size
                    && let Some(error) = this.check()
                {
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(Bytes::from(buffer))))
            }
            Err(error) => {
                this.done = true;
                this.cache.remove(&this.descriptor.digest);
                Poll::Ready(Some(Err(registry::Error::Transfer {
                    host: "cache".to_string(),
                    detail: error.to_string(),
                })))
            }
        }
    }
}

/// A download passed on unchanged while a copy goes into a temporary file of the cache; the
/// copy gets its real name only if the whole blob arrived with the right digest. The cache is
/// a help, never a cause of failure: a write error only stops the copy.
struct Tee {
    upstream: ByteStream,
    temporary: Option<(PathBuf, BufWriter<File>)>,
    hasher: DigestHasher,
    cache: Arc<BlobCache>,
    descriptor: Descriptor,
}

impl Tee {
    fn abandon(&mut self) {
        if let Some((path, file)) = self.temporary.take() {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }

    fn commit(&mut self) {
        let Some((path, mut file)) = self.temporary.take() else {
            return;
        };
        let actual = std::mem::take(&mut self.hasher);
        let complete = actual.len() == self.descriptor.size
            && actual.finish() == self.descriptor.digest
            && file.flush().is_ok();
        drop(file);
        if !complete {
            let _ = std::fs::remove_file(path);
            return;
        }
        match std::fs::rename(&path, self.cache.blob_path(&self.descriptor.digest)) {
            Ok(()) => {
                self.cache.stored.fetch_add(1, Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot add a blob to the cache");
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Stream for Tee {
    type Item = Result<Bytes, registry::Error>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = this.upstream.as_mut().poll_next(context);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some((_, file)) = this.temporary.as_mut() {
                    if let Err(error) = file.write_all(chunk) {
                        tracing::warn!(%error, "cannot write to the blob cache");
                        this.abandon();
                    } else {
                        this.hasher.update(chunk);
                        // The consumer may stop at the blob's size without asking for more.
                        if this.hasher.len() >= this.descriptor.size {
                            this.commit();
                        }
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => this.abandon(),
            Poll::Ready(None) => this.commit(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // A transfer given up halfway leaves nothing behind.
        self.abandon();
    }
}
