//! Saving: a bundle as a copy destination. Blobs stream into plain tar data files ("parts"),
//! several at once (one part per concurrent transfer, as the original had one per worker),
//! and the meta file is written last, listing only images whose every blob landed.
//!
//! A transfer that fails halfway is cut back out of its part (the file is truncated to where
//! the entry began), so a retried or abandoned download never leaves a corrupt entry behind,
//! which the original did.
//!
//! Each part's sha256 is computed, and its data synced while it grows, by threads of the part's
//! own (`part_writer`), so the runtime's thread only downloads, verifies and writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use registry::Digest;
use registry::manifest::{self, Descriptor, ParsedManifest};
use tokio::sync::Semaphore;

use crate::bundle::archive::{EntryLayout, blob_path, index_files};
use crate::bundle::compress::compress_part;
use crate::bundle::meta::{BaseBlob, BundleMeta, Compressor, Entry};
use crate::bundle::part_writer::Part;
use crate::bundle::parts::{entry_name, manifest_entry_name};
use crate::bundle::squashfs::is_recompressed_layer;
use crate::error::{Error, Result};
use crate::lock;
use crate::plan::{ListOptions, plan_line};
use crate::transport::{ByteStream, ImageDestination, Manifest, ManifestRole};

const BLOCK: u64 = 512;
/// Two empty blocks end a tar archive.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// What pads an entry to a whole block.
const PADDING: [u8; BLOCK as usize] = [0; BLOCK as usize];

/// What a bundle builds on: blobs a base bundle carried are assumed on the target.
#[derive(Debug, Clone, Default)]
pub struct BaseBundle {
    /// The base meta's file name, recorded in the new meta.
    pub meta_name: String,
    pub format: Option<u32>,
    pub blobs: HashMap<Digest, BaseBlob>,
}

impl BaseBundle {
    /// Reads what a base bundle (ours or the original tool's) leaves on the target: every
    /// blob it carried, and every blob it assumed there itself, so chains stay complete.
    ///
    /// A squashfs base is the exception: its gzip layers were re-compressed on the way to the
    /// target, so the target has them under other digests, and they are not counted (nor are
    /// blobs it left to its own base whose kind it does not tell); the new bundle carries them.
    pub fn from_meta(path: &Path) -> Result<BaseBundle> {
        let meta = BundleMeta::read(path)?;
        let sizes = meta.referenced_blobs();
        let not_on_target = if meta.compressor == Compressor::Squashfs {
            recompressed_layers(&meta)
        } else {
            HashSet::new()
        };
        let mut blobs = HashMap::new();
        for carried in meta.blobs_carried() {
            if not_on_target.contains(carried.digest.hex()) {
                continue;
            }
            let repositories = carried
                .owners
                .iter()
                .filter(|owner| BundleMeta::base_of_marker(owner).is_none())
                .filter_map(|key| plan_line(key, &ListOptions::default()).ok())
                .map(|pair| pair.source.repository)
                .collect();
            let size = carried
                .entry
                .map(|entry| entry.size)
                .or_else(|| sizes.get(carried.digest.hex()).copied());
            blobs.insert(carried.digest, BaseBlob { size, repositories });
        }
        for assumed in meta.blobs_assumed() {
            let squashfs = meta.compressor == Compressor::Squashfs;
            if not_on_target.contains(assumed.digest.hex()) || (squashfs && assumed.size.is_none())
            {
                continue;
            }
            blobs.entry(assumed.digest).or_insert(BaseBlob {
                size: assumed.size,
                repositories: assumed.repositories,
            });
        }
        let meta_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(BaseBundle {
            meta_name,
            format: meta.format,
            blobs,
        })
    }
}

/// The layers a squashfs bundle stored as tar-split, by hex: every gzip layer its manifests name.
fn recompressed_layers(meta: &BundleMeta) -> HashSet<String> {
    meta.manifests
        .values()
        .chain(meta.child_manifests.values())
        .filter_map(|text| serde_json::from_str::<manifest::ImageManifest>(text).ok())
        .flat_map(|image| image.layers)
        .filter(is_recompressed_layer)
        .map(|layer| layer.digest.hex().to_string())
        .collect()
}

/// How a bundle's data files are compressed: the only choice the writer makes about them (the
/// original's other compressor words are read, not written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain tar, which every reader takes.
    #[default]
    None,
    /// Each data file one zstd stream (`.tar.zst`).
    Zstd,
}

#[derive(Debug, Clone)]
pub struct BundleWriterOptions {
    /// Where the parts and the meta go (created if needed).
    pub directory: PathBuf,
    /// `img_full_<YYYYMMDDHHmm>` (with any prefix): parts are `<work>_<N>.tar`, the meta
    /// `<work>_meta.yaml`.
    pub work_name: String,
    /// Parts written at once; `1` gives a single data file.
    pub parallel_parts: usize,
    /// No part grows past this many bytes, unless one blob alone is larger.
    pub split_size: Option<u64>,
    /// The source as configured (`http://10.45.80.1`): image keys are `<prefix>/<repo>:<tag>`,
    /// as the original wrote them.
    pub key_prefix: String,
    pub bases: Vec<BaseBundle>,
    /// How entries are named; [`EntryLayout::Archive`] writes one loadable data file.
    pub layout: EntryLayout,
    /// How each data file is compressed once it is complete.
    pub compression: Compression,
    /// As the original: do not wait for data files to reach the disk, and record no sha256 of
    /// them (blob digests are still checked on the way and by `verify`). Faster; a crash
    /// right after the save can lose the bundle, which `verify` then reports.
    pub fast: bool,
    /// Write one archive named exactly `work_name` and no meta: an `oci-archive:` or
    /// `docker-archive:` destination rather than a bundle. Needs [`EntryLayout::Archive`].
    pub archive_only: bool,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    manifests: BTreeMap<String, String>,
    child_manifests: BTreeMap<String, String>,
    media_types: BTreeMap<String, String>,
    owners: BTreeMap<String, Vec<String>>,
    base_blobs: BTreeMap<String, BaseBlob>,
    /// Closed parts: name, size, sha256 (none in fast mode).
    finished: Vec<(String, u64, Option<Digest>)>,
    /// Plain part name → compressed part name, for entries written before compression.
    renamed: HashMap<String, String>,
    next_part: usize,
}

/// A part taken from its slot for one entry. Dropping it, however that happens, returns the
/// part to the slot, first cutting out an entry that did not finish.
struct PartLease<'a> {
    writer: &'a BundleWriter,
    slot: usize,
    part: Option<Part>,
}

impl PartLease<'_> {
    fn part(&mut self) -> &mut Part {
        self.part
            .as_mut()
            .expect("a lease holds its part until dropped")
    }
}

impl Drop for PartLease<'_> {
    fn drop(&mut self) {
        let Some(mut part) = self.part.take() else {
            // Opening the part failed: the slot is free again.
            lock(&self.writer.slots)[self.slot] = Slot::Empty;
            return;
        };
        if let Err(error) = part.roll_back() {
            // The part can no longer be trusted; leave it out of the bundle.
            tracing::warn!(part = %part.name(), %error, "cannot cut an unfinished entry out");
            lock(&self.writer.slots)[self.slot] = Slot::Empty;
            return;
        }
        lock(&self.writer.slots)[self.slot] = Slot::Idle(part);
    }
}

/// A place for one part being written at a time.
enum Slot {
    /// No part opened here yet.
    Empty,
    Idle(Part),
    /// A transfer is writing to this slot's part right now.
    Busy,
}

pub struct BundleWriter {
    options: BundleWriterOptions,
    /// As many permits as slots, so a permit always finds a slot that is not busy.
    permits: Semaphore,
    slots: Mutex<Vec<Slot>>,
    state: Mutex<State>,
    /// Held while a manifest is looked up and stored, so one manifest pushed under several
    /// names at once is stored once: the check and the store must be one step.
    manifest_store: tokio::sync::Mutex<()>,
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

impl BundleWriter {
    /// Creates nothing yet: the folder is made with the first data file, so a job refused
    /// before its first blob leaves nothing behind.
    pub fn new(options: BundleWriterOptions) -> Result<BundleWriter> {
        // An archive is one file; the index files at its end must see every image.
        let parallel = match options.layout {
            EntryLayout::Original => options.parallel_parts.max(1),
            EntryLayout::Archive => 1,
        };
        Ok(BundleWriter {
            permits: Semaphore::new(parallel),
            slots: Mutex::new((0..parallel).map(|_| Slot::Empty).collect()),
            state: Mutex::new(State::default()),
            manifest_store: tokio::sync::Mutex::new(()),
            options,
        })
    }

    /// The meta file this writer will write.
    pub fn meta_path(&self) -> PathBuf {
        self.options
            .directory
            .join(format!("{}_meta.yaml", self.options.work_name))
    }

    fn part_path(&self, name: &str) -> PathBuf {
        self.options.directory.join(name)
    }

    fn open_part(&self) -> Result<Part> {
        let number = {
            let mut state = lock(&self.state);
            state.next_part += 1;
            state.next_part - 1
        };
        let name = match self.options.layout {
            _ if self.options.archive_only => self.options.work_name.clone(),
            EntryLayout::Original => format!("{}_{number}.tar", self.options.work_name),
            EntryLayout::Archive => format!("{}_docker.tar", self.options.work_name),
        };
        std::fs::create_dir_all(&self.options.directory)
            .map_err(|e| Error::io(&self.options.directory, e))?;
        // Never overwrites: an earlier bundle of the same name must survive.
        Part::create(&self.options.directory, name, self.options.fast)
    }

    /// Ends a part's tar stream and records its size and digest, once it is on disk.
    fn close_part(&self, part: Part) -> Result<()> {
        let name = part.name().to_string();
        let (size, digest) = part.close(&[0u8; END_OF_ARCHIVE as usize])?;
        if self.options.compression == Compression::Zstd {
            let compressed = format!("{name}.zst");
            let (size, digest) =
                compress_part(&self.part_path(&name), &self.part_path(&compressed))?;
            let mut state = lock(&self.state);
            state.renamed.insert(name, compressed.clone());
            state.finished.push((compressed, size, Some(digest)));
            return Ok(());
        }
        lock(&self.state).finished.push((name, size, digest));
        Ok(())
    }

    /// Writes one tar entry from a stream into the leased part. If this fails, or the future
    /// is dropped (a sibling blob failed, Ctrl-C), the lease cuts the entry back out.
    async fn write_entry(
        &self,
        lease: &mut PartLease<'_>,
        name: &str,
        size: u64,
        mut content: ByteStream,
    ) -> Result<u64> {
        let part = lease.part();
        let start = part.written();
        let mut header = tar::Header::new_ustar();
        header
            .set_path(name)
            .map_err(|e| Error::io(&self.part_path(part.name()), e))?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        part.begin_entry()?;
        part.append(header.as_bytes())?;
        while let Some(chunk) = content.next().await {
            lease.part().append(&chunk?)?;
        }
        let part = lease.part();
        part.append(&PADDING[..(padded(size) - size) as usize])?;
        part.end_entry()?;
        Ok(start + BLOCK)
    }

    /// Stores one entry in whichever part is free, opening or splitting parts as needed.
    async fn store(&self, name: &str, size: u64, content: ByteStream) -> Result<Entry> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Cancelled)?;
        let (slot, taken) = {
            let mut slots = lock(&self.slots);
            // Prefer a part already open, so parts fill up rather than multiply.
            let slot = slots
                .iter()
                .position(|slot| matches!(slot, Slot::Idle(_)))
                .or_else(|| slots.iter().position(|slot| matches!(slot, Slot::Empty)))
                .unwrap_or(0);
            match std::mem::replace(&mut slots[slot], Slot::Busy) {
                Slot::Idle(part) => (slot, Some(part)),
                Slot::Empty | Slot::Busy => (slot, None),
            }
        };
        let mut lease = PartLease {
            writer: self,
            slot,
            part: taken,
        };
        let opened = match lease.part.take() {
            Some(part) => part,
            None => self.open_part()?,
        };
        let part = match self.options.split_size {
            Some(limit)
                if self.options.layout == EntryLayout::Original
                    && opened.written() > 0
                    && opened.written() + BLOCK + padded(size) + END_OF_ARCHIVE > limit =>
            {
                self.close_part(opened)?;
                self.open_part()?
            }
            _ => opened,
        };
        let file = part.name().to_string();
        lease.part = Some(part);
        let offset = self.write_entry(&mut lease, name, size, content).await?;
        Ok(Entry { file, offset, size })
    }

    /// The key the original tool gives an image: the source URL with scheme.
    fn image_key(&self, repository: &str, reference: &str) -> String {
        crate::transport::image_key(&self.options.key_prefix, repository, reference)
    }

    fn base_blob(&self, digest: &Digest) -> Option<(&BaseBundle, &BaseBlob)> {
        self.options
            .bases
            .iter()
            .find_map(|base| base.blobs.get(digest).map(|blob| (base, blob)))
    }

    /// Records who uses each blob of a finished image, and which base blobs it relies on.
    fn record_blobs(&self, state: &mut State, key: &str, manifest: &Manifest) -> Result<()> {
        let mut blobs: Vec<Descriptor> = Vec::new();
        match manifest::parse(&manifest.media_type, &manifest.bytes, key)? {
            ParsedManifest::Image(image) => blobs.extend(image.blobs().cloned()),
            ParsedManifest::Index(index) => {
                for child in &index.manifests {
                    let Some(bytes) = state.child_manifests.get(child.digest.as_str()) else {
                        continue;
                    };
                    let media_type = state
                        .media_types
                        .get(child.digest.as_str())
                        .cloned()
                        .unwrap_or_else(|| child.media_type.clone());
                    if let ParsedManifest::Image(image) =
                        manifest::parse(&media_type, bytes.as_bytes(), key)?
                    {
                        blobs.extend(image.blobs().cloned());
                    }
                }
            }
        }
        for blob in blobs {
            let hex = blob.digest.hex().to_string();
            if state.entries.contains_key(&hex) {
                let owners = state.owners.entry(hex).or_default();
                if !owners.iter().any(|o| o == key) {
                    owners.push(key.to_string());
                }
            } else if let Some((base, known)) = self.base_blob(&blob.digest) {
                state
                    .owners
                    .insert(hex.clone(), vec![BundleMeta::base_marker(&base.meta_name)]);
                state.base_blobs.insert(
                    hex,
                    BaseBlob {
                        size: known.size.or(Some(blob.size)),
                        repositories: known.repositories.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Closes every part and writes the meta file, last and atomically. Images that did not
    /// complete are not in it.
    pub async fn finish_bundle(&self) -> Result<PathBuf> {
        if self.options.layout == EntryLayout::Archive {
            self.write_index_files().await?;
        }
        let parts: Vec<Part> = lock(&self.slots)
            .iter_mut()
            .filter_map(|slot| match std::mem::replace(slot, Slot::Empty) {
                Slot::Idle(part) => Some(part),
                Slot::Empty | Slot::Busy => None,
            })
            .collect();
        // Each close waits for its file to reach the disk and for its sha256; those waits
        // overlap.
        std::thread::scope(|scope| {
            let closing: Vec<_> = parts
                .into_iter()
                .map(|part| scope.spawn(move || self.close_part(part)))
                .collect();
            closing
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<()>>>()
        })?;
        let state = std::mem::take(&mut *lock(&self.state));
        if self.options.archive_only {
            // The archive's own index files, written first, are all it needs.
            return Ok(self.part_path(&self.options.work_name));
        }
        let mut meta = BundleMeta::new_ours();
        for (name, size, digest) in &state.finished {
            meta.datafiles.insert(name.clone(), *size);
            if let Some(digest) = digest {
                meta.datafile_sha256
                    .insert(name.clone(), digest.hex().to_string());
            }
        }
        meta.blobs = state.owners;
        meta.manifests = state.manifests;
        meta.child_manifests = state.child_manifests;
        meta.media_types = state.media_types;
        meta.entries = state.entries;
        for entry in meta.entries.values_mut() {
            if let Some(name) = state.renamed.get(&entry.file) {
                entry.file = name.clone();
            }
        }
        if self.options.compression == Compression::Zstd {
            meta.compressor = Compressor::Zstd;
        }
        meta.base_blobs = state.base_blobs;
        meta.bases = self
            .options
            .bases
            .iter()
            .map(|base| crate::bundle::meta::BaseRef {
                meta: base.meta_name.clone(),
                format: base.format,
            })
            .collect();
        let path = self.meta_path();
        std::fs::create_dir_all(&self.options.directory)
            .map_err(|e| Error::io(&self.options.directory, e))?;
        meta.write_atomically(&path)?;
        Ok(path)
    }

    /// Appends the OCI and docker index files to the archive, after every blob.
    async fn write_index_files(&self) -> Result<()> {
        let files = {
            let state = lock(&self.state);
            index_files(&state.manifests, &state.child_manifests, &state.media_types)
        };
        for (name, bytes) in files {
            let size = bytes.len() as u64;
            let content = futures_util::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed();
            let entry = self.store(&name, size, content).await?;
            // OCI twins of Docker manifests are blobs too: verify checks them like the rest.
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                lock(&self.state).entries.insert(hex.to_string(), entry);
            }
        }
        Ok(())
    }

    pub fn directory(&self) -> &Path {
        &self.options.directory
    }
}

impl BundleWriterOptions {
    /// One archive at `path` that is an OCI image layout and a `docker load` archive at once,
    /// with no meta beside it: the `oci-archive:` and `docker-archive:` destinations. Images
    /// are named `key_prefix/repository:tag` in it (no prefix: `repository:tag`).
    pub fn archive(path: &Path, key_prefix: String) -> BundleWriterOptions {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        BundleWriterOptions {
            directory,
            work_name: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            parallel_parts: 1,
            split_size: None,
            key_prefix,
            bases: Vec::new(),
            layout: EntryLayout::Archive,
            compression: Compression::None,
            fast: false,
            archive_only: true,
        }
    }
}

#[async_trait]
impl ImageDestination for BundleWriter {
    fn describe(&self) -> String {
        self.options.work_name.clone()
    }

    async fn finish(&self) -> Result<Option<PathBuf>> {
        self.finish_bundle().await.map(Some)
    }

    async fn has_blob(&self, _repository: &str, descriptor: &Descriptor) -> Result<bool> {
        Ok(lock(&self.state)
            .entries
            .contains_key(descriptor.digest.hex())
            || self.base_blob(&descriptor.digest).is_some())
    }

    async fn put_blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
    ) -> Result<()> {
        let hex = descriptor.digest.hex();
        let name = match self.options.layout {
            EntryLayout::Original => entry_name(hex, &descriptor.media_type, descriptor.size),
            EntryLayout::Archive => blob_path(hex),
        };
        let entry = self.store(&name, descriptor.size, content).await?;
        lock(&self.state)
            .entries
            .insert(descriptor.digest.hex().to_string(), entry);
        Ok(())
    }

    async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>> {
        let key = self.image_key(repository, reference);
        Ok(lock(&self.state)
            .manifests
            .get(&key)
            .map(|text| Digest::of(text.as_bytes())))
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
        role: ManifestRole,
    ) -> Result<()> {
        let text = String::from_utf8(manifest.bytes.to_vec()).map_err(|_| {
            Error::Registry(registry::Error::InvalidManifest {
                reference: format!("{repository}:{reference}"),
                detail: "not UTF-8 text".into(),
            })
        })?;
        // The manifest also goes into the data, so the parts alone describe their images.
        let _storing = self.manifest_store.lock().await;
        let stored = lock(&self.state)
            .entries
            .contains_key(manifest.digest.hex());
        if !stored {
            let name = match self.options.layout {
                EntryLayout::Original => manifest_entry_name(manifest.digest.hex()),
                EntryLayout::Archive => blob_path(manifest.digest.hex()),
            };
            let bytes = manifest.bytes.clone();
            let content = futures_util::stream::once(async move { Ok(bytes) }).boxed();
            let entry = self
                .store(&name, manifest.bytes.len() as u64, content)
                .await?;
            lock(&self.state)
                .entries
                .insert(manifest.digest.hex().to_string(), entry);
        }
        let mut state = lock(&self.state);
        match role {
            ManifestRole::Child => {
                state
                    .child_manifests
                    .insert(manifest.digest.to_string(), text);
                state
                    .media_types
                    .insert(manifest.digest.to_string(), manifest.media_type.clone());
            }
            ManifestRole::Top => {
                let key = self.image_key(repository, reference);
                self.record_blobs(&mut state, &key, manifest)?;
                state.manifests.insert(key.clone(), text);
                state.media_types.insert(key, manifest.media_type.clone());
            }
        }
        Ok(())
    }
}
