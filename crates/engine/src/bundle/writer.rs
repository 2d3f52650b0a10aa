//! Saving: a bundle as a copy destination. Blobs stream into plain tar data files ("parts"),
//! several at once (one part per concurrent transfer, as the original had one per worker),
//! and the meta file is written last, listing only images whose every blob landed.
//!
//! A transfer that fails halfway is cut back out of its part (the file is truncated to where
//! the entry began), so a retried or abandoned download never leaves a corrupt entry behind,
//! which the original did.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::StreamExt;
use registry::manifest::{self, Descriptor, ParsedManifest};
use registry::{Digest, DigestHasher};
use tokio::sync::Semaphore;

use crate::bundle::meta::{BaseBlob, BundleMeta, Entry};
use crate::bundle::parts::entry_name;
use crate::error::{Error, Result};
use crate::plan::{ListOptions, plan_line};
use crate::transport::{ByteStream, ImageDestination, Manifest, ManifestRole};

const BLOCK: u64 = 512;
/// Two empty blocks end a tar archive.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// Write buffer per part: large enough for few system calls, small for a flat memory profile.
const BUFFER: usize = 256 << 10;

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
    pub fn from_meta(path: &Path) -> Result<BaseBundle> {
        let meta = BundleMeta::read(path)?;
        let sizes = meta.referenced_blobs();
        let mut blobs = HashMap::new();
        for carried in meta.blobs_carried() {
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
}

/// One open data file.
struct Part {
    name: String,
    file: BufWriter<File>,
    written: u64,
    /// sha256 of the part so far; rolled back with the file when an entry fails.
    hasher: DigestHasher,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    manifests: BTreeMap<String, String>,
    child_manifests: BTreeMap<String, String>,
    media_types: BTreeMap<String, String>,
    owners: BTreeMap<String, Vec<String>>,
    base_blobs: BTreeMap<String, BaseBlob>,
    finished: Vec<(String, u64, Digest)>,
    next_part: usize,
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
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

impl BundleWriter {
    pub fn new(options: BundleWriterOptions) -> Result<BundleWriter> {
        std::fs::create_dir_all(&options.directory)
            .map_err(|e| Error::io(&options.directory, e))?;
        let parallel = options.parallel_parts.max(1);
        Ok(BundleWriter {
            permits: Semaphore::new(parallel),
            slots: Mutex::new((0..parallel).map(|_| Slot::Empty).collect()),
            state: Mutex::new(State::default()),
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
        let name = format!("{}_{number}.tar", self.options.work_name);
        let path = self.part_path(&name);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Part {
            name,
            file: BufWriter::with_capacity(BUFFER, file),
            written: 0,
            hasher: DigestHasher::new(),
        })
    }

    /// Ends a part's tar stream and records its size and digest.
    fn close_part(&self, mut part: Part) -> Result<()> {
        let path = self.part_path(&part.name);
        let end = [0u8; END_OF_ARCHIVE as usize];
        part.file.write_all(&end).map_err(|e| Error::io(&path, e))?;
        part.hasher.update(&end);
        part.written += END_OF_ARCHIVE;
        let file = part
            .file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        lock(&self.state)
            .finished
            .push((part.name, part.written, part.hasher.finish()));
        Ok(())
    }

    /// Writes one tar entry from a stream. On any failure the part is cut back to where the
    /// entry began.
    async fn write_entry(
        &self,
        part: &mut Part,
        name: &str,
        size: u64,
        mut content: ByteStream,
    ) -> Result<u64> {
        let start = part.written;
        let checkpoint = part.hasher.clone();
        let path = self.part_path(&part.name);
        let outcome = async {
            let mut header = tar::Header::new_ustar();
            header.set_path(name).map_err(|e| Error::io(&path, e))?;
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            part.file
                .write_all(header.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
            part.hasher.update(header.as_bytes());
            while let Some(chunk) = content.next().await {
                let chunk = chunk?;
                part.file
                    .write_all(&chunk)
                    .map_err(|e| Error::io(&path, e))?;
                part.hasher.update(&chunk);
            }
            let padding = vec![0u8; (padded(size) - size) as usize];
            part.file
                .write_all(&padding)
                .map_err(|e| Error::io(&path, e))?;
            part.hasher.update(&padding);
            Ok::<(), Error>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                part.written = start + BLOCK + padded(size);
                Ok(start + BLOCK)
            }
            Err(error) => {
                self.roll_back(part, start)?;
                part.hasher = checkpoint;
                Err(error)
            }
        }
    }

    fn roll_back(&self, part: &mut Part, start: u64) -> Result<()> {
        let path = self.part_path(&part.name);
        part.file.flush().map_err(|e| Error::io(&path, e))?;
        let file = part.file.get_mut();
        file.set_len(start).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io(&path, e))?;
        part.written = start;
        Ok(())
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
        let mut part = match taken {
            Some(part) => part,
            None => self.open_part()?,
        };
        if let Some(limit) = self.options.split_size
            && part.written > 0
            && part.written + BLOCK + padded(size) + END_OF_ARCHIVE > limit
        {
            self.close_part(part)?;
            part = self.open_part()?;
        }
        let outcome = self.write_entry(&mut part, name, size, content).await;
        let file = part.name.clone();
        lock(&self.slots)[slot] = Slot::Idle(part);
        let offset = outcome?;
        Ok(Entry { file, offset, size })
    }

    /// The key the original tool gives an image: the source URL with scheme.
    fn image_key(&self, repository: &str, reference: &str) -> String {
        let separator = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!(
            "{}/{repository}{separator}{reference}",
            self.options.key_prefix.trim_end_matches('/')
        )
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
    pub fn finish(&self) -> Result<PathBuf> {
        let parts: Vec<Part> = lock(&self.slots)
            .iter_mut()
            .filter_map(|slot| match std::mem::replace(slot, Slot::Empty) {
                Slot::Idle(part) => Some(part),
                Slot::Empty | Slot::Busy => None,
            })
            .collect();
        for part in parts {
            self.close_part(part)?;
        }
        let state = std::mem::take(&mut *lock(&self.state));
        let mut meta = BundleMeta::new_ours();
        for (name, size, digest) in &state.finished {
            meta.datafiles.insert(name.clone(), *size);
            meta.datafile_sha256
                .insert(name.clone(), digest.hex().to_string());
        }
        meta.blobs = state.owners;
        meta.manifests = state.manifests;
        meta.child_manifests = state.child_manifests;
        meta.media_types = state.media_types;
        meta.entries = state.entries;
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
        meta.write_atomically(&path)?;
        Ok(path)
    }

    pub fn directory(&self) -> &Path {
        &self.options.directory
    }
}

#[async_trait]
impl ImageDestination for BundleWriter {
    fn describe(&self) -> String {
        self.options.work_name.clone()
    }

    async fn has_blob(&self, _repository: &str, descriptor: &Descriptor) -> Result<bool> {
        Ok(lock(&self.state)
            .entries
            .contains_key(descriptor.digest.hex())
            || self.base_blob(&descriptor.digest).is_some())
    }

    async fn mount_blob(
        &self,
        _repository: &str,
        _descriptor: &Descriptor,
        _from: &str,
    ) -> Result<bool> {
        // A bundle stores a blob once; has_blob already says so.
        Ok(false)
    }

    async fn put_blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
    ) -> Result<()> {
        let name = entry_name(
            descriptor.digest.hex(),
            &descriptor.media_type,
            descriptor.size,
        );
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
        let stored = lock(&self.state)
            .entries
            .contains_key(manifest.digest.hex());
        if !stored {
            let name = format!("{}.manifest.json", manifest.digest.hex());
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
