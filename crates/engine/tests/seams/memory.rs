//! In-memory parts for the engine's seams: a source serving manifests and blobs from maps, each
//! blob with a behaviour of its own (break, hang, crawl, lie), a destination and a loader that
//! record every call made to them, and an observer that keeps every event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use engine::transport::{
    ByteStream, ImageDestination, ImageLoader, ImageSource, Manifest, ManifestRole,
};
use engine::{Error, Event, Observer, Result};
use futures_util::{StreamExt, stream};
use registry::Digest;
use registry::manifest::{self, Descriptor, ParsedManifest};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Blobs are served in chunks of this many bytes.
pub(crate) const CHUNK: usize = 1024;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn transfer_error(host: &str, detail: &str) -> registry::Error {
    registry::Error::Transfer {
        host: host.to_string(),
        detail: detail.to_string(),
    }
}

fn chunks(content: &Bytes) -> Vec<Result<Bytes, registry::Error>> {
    (0..content.len())
        .step_by(CHUNK)
        .map(|start| Ok(content.slice(start..(start + CHUNK).min(content.len()))))
        .collect()
}

/// How the source serves one blob.
#[derive(Clone, Debug)]
pub(crate) enum Serve {
    /// The first `times` reads send `bytes` bytes, then break with a retryable transfer error.
    BreakAfter { bytes: usize, times: usize },
    /// Every read sends `bytes` bytes, then nothing, ever (and tells [`MemSource::hanging`]).
    HangAfter { bytes: usize },
    /// Every chunk comes `delay` after the one before.
    Slow { delay: Duration },
    /// The right size, one byte changed: the digest does not match.
    Corrupt,
}

/// Images in maps: tags to manifest digests, manifests and blobs by digest.
#[derive(Default)]
pub(crate) struct MemSource {
    tags: HashMap<(String, String), Digest>,
    manifests: HashMap<Digest, Manifest>,
    blobs: HashMap<Digest, Bytes>,
    serve: HashMap<Digest, Serve>,
    hints: HashMap<Digest, Vec<String>>,
    /// Every blob read, in order.
    reads: Mutex<Vec<Digest>>,
    /// Every manifest asked for: repository and reference, in order.
    manifest_reads: Mutex<Vec<(String, String)>>,
    /// Told each time a [`Serve::HangAfter`] read has sent its bytes.
    pub(crate) hanging: Arc<Notify>,
}

impl MemSource {
    /// Adds an image manifest (or an index) with its blobs under `repository:tag`.
    pub(crate) fn add(&mut self, repository: &str, tag: &str, image: &TestImage) {
        self.add_manifest(image);
        self.tags.insert(
            (repository.into(), tag.into()),
            image.manifest.digest.clone(),
        );
    }

    /// Adds a manifest and its blobs, reachable by digest only (an index's child).
    pub(crate) fn add_manifest(&mut self, image: &TestImage) {
        self.manifests
            .insert(image.manifest.digest.clone(), image.manifest.clone());
        for (digest, bytes) in &image.blobs {
            self.blobs.insert(digest.clone(), bytes.clone());
        }
    }

    pub(crate) fn serve(&mut self, digest: &Digest, serve: Serve) {
        self.serve.insert(digest.clone(), serve);
    }

    /// Says that the destination's `repository` already holds `digest`.
    pub(crate) fn hint(&mut self, digest: &Digest, repository: &str) {
        self.hints
            .entry(digest.clone())
            .or_default()
            .push(repository.into());
    }

    /// How many times `digest` was opened.
    pub(crate) fn reads_of(&self, digest: &Digest) -> usize {
        lock(&self.reads).iter().filter(|d| *d == digest).count()
    }

    pub(crate) fn manifest_reads(&self) -> Vec<(String, String)> {
        lock(&self.manifest_reads).clone()
    }
}

#[async_trait]
impl ImageSource for MemSource {
    fn describe(&self) -> String {
        "memory source".into()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        lock(&self.manifest_reads).push((repository.into(), reference.into()));
        let digest = match reference.parse::<Digest>() {
            Ok(digest) => Some(digest),
            Err(_) => self
                .tags
                .get(&(repository.to_string(), reference.to_string()))
                .cloned(),
        };
        digest
            .and_then(|digest| self.manifests.get(&digest).cloned())
            .ok_or_else(|| {
                Error::Registry(registry::Error::ManifestNotFound {
                    host: self.describe(),
                    reference: format!("{repository}:{reference}"),
                })
            })
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        let digest = &descriptor.digest;
        lock(&self.reads).push(digest.clone());
        let read = self.reads_of(digest);
        let content = self.blobs.get(digest).cloned().ok_or_else(|| {
            Error::Registry(registry::Error::BlobNotFound {
                host: self.describe(),
                repository: repository.into(),
                digest: digest.clone(),
            })
        })?;
        let stream = match self.serve.get(digest).cloned() {
            None => stream::iter(chunks(&content)).boxed(),
            Some(Serve::BreakAfter { bytes, times }) if read <= times => {
                stream::iter(chunks(&content.slice(..bytes)))
                    .chain(stream::once(async {
                        Err(transfer_error("memory source", "connection reset"))
                    }))
                    .boxed()
            }
            Some(Serve::BreakAfter { .. }) => stream::iter(chunks(&content)).boxed(),
            Some(Serve::HangAfter { bytes }) => {
                let hanging = self.hanging.clone();
                stream::iter(chunks(&content.slice(..bytes)))
                    .chain(stream::once(async move {
                        hanging.notify_one();
                        std::future::pending::<Result<Bytes, registry::Error>>().await
                    }))
                    .boxed()
            }
            Some(Serve::Slow { delay }) => stream::iter(chunks(&content))
                .then(move |chunk| async move {
                    tokio::time::sleep(delay).await;
                    chunk
                })
                .boxed(),
            Some(Serve::Corrupt) => {
                let mut corrupt = content.to_vec();
                if let Some(last) = corrupt.last_mut() {
                    *last ^= 0xff;
                }
                stream::iter(chunks(&Bytes::from(corrupt))).boxed()
            }
        };
        Ok(stream)
    }

    fn mount_hints(&self, digest: &Digest) -> Vec<String> {
        self.hints.get(digest).cloned().unwrap_or_default()
    }
}

/// Another source, with its blob reads counted.
pub(crate) struct Counted<S> {
    inner: S,
    reads: Mutex<Vec<Digest>>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S) -> Counted<S> {
        Counted {
            inner,
            reads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn reads(&self) -> Vec<Digest> {
        lock(&self.reads).clone()
    }
}

#[async_trait]
impl<S: ImageSource> ImageSource for Counted<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        self.inner.manifest(repository, reference).await
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        lock(&self.reads).push(descriptor.digest.clone());
        self.inner.blob(repository, descriptor).await
    }
}

/// One call to [`MemDest`], with what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    HasBlob(String, Digest),
    Mount {
        repository: String,
        digest: Digest,
        from: String,
        mounted: bool,
    },
    PutBlob(String, Digest),
    /// The body was whole and right: the blob is kept.
    Stored(String, Digest),
    /// The body ended in an error after `received` bytes: nothing kept.
    BodyBroke {
        repository: String,
        digest: Digest,
        received: u64,
    },
    /// The body ended without error but its content is not the digest's: nothing kept. The
    /// engine must never let this happen.
    WrongContent(String, Digest),
    /// The whole body was read, and the destination failed the upload on purpose.
    PutFailed(String, Digest),
    /// The whole body was read, and the destination will never answer.
    Unanswered(String, Digest),
    ManifestDigest(String, String),
    PutManifest {
        repository: String,
        reference: String,
        digest: Digest,
        role: ManifestRole,
    },
    /// A manifest whose blobs or children the repository lacks, refused as a registry would.
    ManifestRefused(String, String),
}

impl Call {
    /// The blob this call is about, if any.
    fn blob(&self) -> Option<&Digest> {
        match self {
            Call::HasBlob(_, digest)
            | Call::Mount { digest, .. }
            | Call::PutBlob(_, digest)
            | Call::Stored(_, digest)
            | Call::BodyBroke { digest, .. }
            | Call::WrongContent(_, digest)
            | Call::PutFailed(_, digest)
            | Call::Unanswered(_, digest) => Some(digest),
            Call::ManifestDigest(..) | Call::PutManifest { .. } | Call::ManifestRefused(..) => None,
        }
    }
}

/// How the destination takes one blob.
#[derive(Clone, Debug)]
pub(crate) enum Take {
    /// The first `times` uploads read the whole body and then fail with a retryable error.
    FailAfterBody { times: usize },
    /// Reads the whole body, then never answers.
    NeverAnswer,
}

/// A registry in memory: blobs per repository, manifests per repository and reference.
pub(crate) struct MemDest {
    calls: Mutex<Vec<Call>>,
    blobs: Mutex<HashMap<(String, Digest), Bytes>>,
    manifests: Mutex<HashMap<(String, String), Manifest>>,
    mounts_allowed: bool,
    take: HashMap<Digest, Take>,
    cancel_after_child: Option<CancellationToken>,
}

impl MemDest {
    pub(crate) fn new() -> MemDest {
        MemDest {
            calls: Mutex::new(Vec::new()),
            blobs: Mutex::new(HashMap::new()),
            manifests: Mutex::new(HashMap::new()),
            mounts_allowed: true,
            take: HashMap::new(),
            cancel_after_child: None,
        }
    }

    /// A destination that cannot mount (a mount then answers "no", as a registry that starts
    /// an upload session instead does).
    pub(crate) fn without_mounts(mut self) -> MemDest {
        self.mounts_allowed = false;
        self
    }

    pub(crate) fn taking(mut self, digest: &Digest, take: Take) -> MemDest {
        self.take.insert(digest.clone(), take);
        self
    }

    /// Cancels `token` as soon as an index's child manifest is stored.
    pub(crate) fn cancelling_after_child(mut self, token: CancellationToken) -> MemDest {
        self.cancel_after_child = Some(token);
        self
    }

    /// Puts a blob in `repository` before the job starts.
    pub(crate) fn holding(self, repository: &str, content: &Bytes) -> MemDest {
        lock(&self.blobs).insert((repository.into(), Digest::of(content)), content.clone());
        self
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The calls about `digest`, in order.
    pub(crate) fn blob_calls(&self, digest: &Digest) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.blob() == Some(digest))
            .collect()
    }

    /// The digests of every blob the destination was asked about, each once, sorted.
    pub(crate) fn blobs_touched(&self) -> Vec<Digest> {
        let mut touched: Vec<Digest> = self
            .calls()
            .iter()
            .filter_map(Call::blob)
            .cloned()
            .collect();
        touched.sort();
        touched.dedup();
        touched
    }

    /// The calls about manifests, in order.
    pub(crate) fn manifest_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.blob().is_none())
            .collect()
    }

    pub(crate) fn blob(&self, repository: &str, digest: &Digest) -> Option<Bytes> {
        lock(&self.blobs)
            .get(&(repository.to_string(), digest.clone()))
            .cloned()
    }

    pub(crate) fn manifest(&self, repository: &str, reference: &str) -> Option<Manifest> {
        lock(&self.manifests)
            .get(&(repository.to_string(), reference.to_string()))
            .cloned()
    }

    fn record(&self, call: Call) {
        lock(&self.calls).push(call);
    }

    /// Whether `repository` holds everything `manifest` refers to, as a registry checks.
    fn complete(&self, repository: &str, manifest: &Manifest) -> bool {
        let parsed = manifest::parse(&manifest.media_type, &manifest.bytes, "memory");
        match parsed {
            Ok(ParsedManifest::Image(image)) => image
                .blobs()
                .all(|blob| self.blob(repository, &blob.digest).is_some()),
            Ok(ParsedManifest::Index(index)) => index
                .manifests
                .iter()
                .all(|child| self.manifest(repository, child.digest.as_str()).is_some()),
            Err(_) => false,
        }
    }
}

#[async_trait]
impl ImageDestination for MemDest {
    fn describe(&self) -> String {
        "memory destination".into()
    }

    async fn has_blob(&self, repository: &str, descriptor: &Descriptor) -> Result<bool> {
        self.record(Call::HasBlob(repository.into(), descriptor.digest.clone()));
        Ok(self.blob(repository, &descriptor.digest).is_some())
    }

    async fn mount_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        from: &str,
    ) -> Result<bool> {
        let digest = &descriptor.digest;
        let held = self.blob(from, digest);
        let mounted = self.mounts_allowed && held.is_some();
        if let Some(content) = held.filter(|_| mounted) {
            lock(&self.blobs).insert((repository.into(), digest.clone()), content);
        }
        self.record(Call::Mount {
            repository: repository.into(),
            digest: digest.clone(),
            from: from.into(),
            mounted,
        });
        Ok(mounted)
    }

    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        mut content: ByteStream,
    ) -> Result<()> {
        let digest = descriptor.digest.clone();
        self.record(Call::PutBlob(repository.into(), digest.clone()));
        let mut body = Vec::new();
        while let Some(chunk) = content.next().await {
            match chunk {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(error) => {
                    self.record(Call::BodyBroke {
                        repository: repository.into(),
                        digest,
                        received: body.len() as u64,
                    });
                    return Err(error.into());
                }
            }
        }
        let attempt = lock(&self.calls)
            .iter()
            .filter(|call| **call == Call::PutBlob(repository.into(), digest.clone()))
            .count();
        match self.take.get(&digest) {
            Some(Take::FailAfterBody { times }) if attempt <= *times => {
                self.record(Call::PutFailed(repository.into(), digest));
                return Err(transfer_error("memory destination", "upload failed").into());
            }
            Some(Take::NeverAnswer) => {
                self.record(Call::Unanswered(repository.into(), digest));
                return std::future::pending().await;
            }
            _ => {}
        }
        let actual = Digest::of(&body);
        if actual != digest || body.len() as u64 != descriptor.size {
            self.record(Call::WrongContent(repository.into(), digest.clone()));
            return Err(registry::Error::DigestMismatch {
                expected: digest,
                actual,
                bytes: body.len() as u64,
            }
            .into());
        }
        lock(&self.blobs).insert((repository.into(), digest.clone()), body.into());
        self.record(Call::Stored(repository.into(), digest));
        Ok(())
    }

    async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>> {
        self.record(Call::ManifestDigest(repository.into(), reference.into()));
        Ok(self
            .manifest(repository, reference)
            .map(|manifest| manifest.digest))
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
        role: ManifestRole,
    ) -> Result<()> {
        if !self.complete(repository, manifest) {
            self.record(Call::ManifestRefused(repository.into(), reference.into()));
            return Err(registry::Error::Status {
                host: self.describe(),
                status: 400,
                method: "PUT".into(),
                path: format!("{repository}/manifests/{reference}"),
                body: "MANIFEST_BLOB_UNKNOWN".into(),
            }
            .into());
        }
        lock(&self.manifests).insert((repository.into(), reference.into()), manifest.clone());
        self.record(Call::PutManifest {
            repository: repository.into(),
            reference: reference.into(),
            digest: manifest.digest.clone(),
            role,
        });
        if role == ManifestRole::Child
            && let Some(token) = &self.cancel_after_child
        {
            token.cancel();
        }
        Ok(())
    }
}

/// One call to [`MemLoader`], with what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LoadCall {
    HasImage(String, Digest),
    Load(String),
    /// The archive was read to its end.
    Loaded(String),
    /// The archive broke after `received` bytes.
    Broke {
        name: String,
        received: usize,
    },
}

/// A container engine in memory: it reads each archive whole and keeps it.
#[derive(Default)]
pub(crate) struct MemLoader {
    calls: Mutex<Vec<LoadCall>>,
    /// Every archive received, whole or not, with the name it was loaded as.
    archives: Mutex<Vec<(String, Vec<u8>)>>,
    /// Names whose image the engine has already, with its config digest.
    images: Mutex<HashMap<String, Digest>>,
}

impl MemLoader {
    pub(crate) fn holding(self, name: &str, config: &Digest) -> MemLoader {
        lock(&self.images).insert(name.into(), config.clone());
        self
    }

    pub(crate) fn calls(&self) -> Vec<LoadCall> {
        lock(&self.calls).clone()
    }

    pub(crate) fn archives(&self) -> Vec<(String, Vec<u8>)> {
        lock(&self.archives).clone()
    }
}

#[async_trait]
impl ImageLoader for MemLoader {
    fn describe(&self) -> String {
        "memory engine".into()
    }

    async fn has_image(&self, name: &str, config: &Digest) -> Result<bool> {
        lock(&self.calls).push(LoadCall::HasImage(name.into(), config.clone()));
        Ok(lock(&self.images).get(name) == Some(config))
    }

    async fn load(&self, name: &str, mut archive: ByteStream) -> Result<()> {
        lock(&self.calls).push(LoadCall::Load(name.into()));
        let mut received = Vec::new();
        let mut broke = None;
        while let Some(chunk) = archive.next().await {
            match chunk {
                Ok(chunk) => received.extend_from_slice(&chunk),
                Err(error) => {
                    broke = Some(error);
                    break;
                }
            }
        }
        let outcome = match broke {
            Some(error) => {
                lock(&self.calls).push(LoadCall::Broke {
                    name: name.into(),
                    received: received.len(),
                });
                Err(error.into())
            }
            None => {
                lock(&self.calls).push(LoadCall::Loaded(name.into()));
                Ok(())
            }
        };
        lock(&self.archives).push((name.into(), received));
        outcome
    }
}

/// Keeps every event.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub(crate) fn events(&self) -> Vec<Event> {
        lock(&self.0).clone()
    }
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        lock(&self.0).push(event.clone());
    }
}

/// An image manifest (or an index) and the blobs it alone brings, as a source holds them.
#[derive(Clone)]
pub(crate) struct TestImage {
    pub(crate) manifest: Manifest,
    /// Every blob: config first, then layers in order, each once.
    pub(crate) blobs: Vec<(Digest, Bytes)>,
    pub(crate) config: Digest,
    pub(crate) layers: Vec<Digest>,
}

impl TestImage {
    /// An OCI image of `layers` for `os/architecture`.
    pub(crate) fn new(os: &str, architecture: &str, layers: &[&Bytes]) -> TestImage {
        let descriptor = |media_type: &str, content: &Bytes| {
            serde_json::json!({
                "mediaType": media_type,
                "digest": Digest::of(content),
                "size": content.len(),
            })
        };
        let config = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "architecture": architecture,
                "os": os,
                "rootfs": {
                    "type": "layers",
                    "diff_ids": layers.iter().map(|l| Digest::of(l)).collect::<Vec<_>>(),
                },
            }))
            .unwrap(),
        );
        let bytes = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
                "layers": layers
                    .iter()
                    .map(|layer| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer))
                    .collect::<Vec<_>>(),
            }))
            .unwrap(),
        );
        let mut blobs = vec![(Digest::of(&config), config.clone())];
        for layer in layers {
            let digest = Digest::of(layer);
            if !blobs.iter().any(|(d, _)| *d == digest) {
                blobs.push((digest, (*layer).clone()));
            }
        }
        TestImage {
            manifest: Manifest {
                digest: Digest::of(&bytes),
                bytes,
                media_type: manifest::OCI_MANIFEST.into(),
            },
            blobs,
            config: Digest::of(&config),
            layers: layers.iter().map(|l| Digest::of(l)).collect(),
        }
    }

    /// An OCI index of `children`, each with its platform. It brings no blobs of its own.
    pub(crate) fn index(children: &[(&str, &str, &TestImage)]) -> TestImage {
        let bytes = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_INDEX,
                "manifests": children
                    .iter()
                    .map(|(os, architecture, child)| serde_json::json!({
                        "mediaType": child.manifest.media_type,
                        "digest": child.manifest.digest,
                        "size": child.manifest.bytes.len(),
                        "platform": { "os": os, "architecture": architecture },
                    }))
                    .collect::<Vec<_>>(),
            }))
            .unwrap(),
        );
        TestImage {
            manifest: Manifest {
                digest: Digest::of(&bytes),
                bytes,
                media_type: manifest::OCI_INDEX.into(),
            },
            blobs: Vec::new(),
            config: Digest::of(b""),
            layers: Vec::new(),
        }
    }

    /// The bytes of `digest`, one of this image's blobs.
    pub(crate) fn bytes_of(&self, digest: &Digest) -> Bytes {
        self.blobs
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, bytes)| bytes.clone())
            .unwrap()
    }

    /// The sum of the sizes of the image's blobs, each once.
    pub(crate) fn size(&self) -> u64 {
        self.blobs.iter().map(|(_, b)| b.len() as u64).sum()
    }
}

/// A gzip-compressed tar layer of a little more than `size` bytes, the same for the same seed.
pub(crate) fn layer(seed: u64, size: usize) -> Bytes {
    Bytes::copy_from_slice(testkit::Layer::random(seed, size).bytes())
}
