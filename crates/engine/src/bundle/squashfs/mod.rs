//! The original tool's `compressor: squashfs` bundles, read in pure Rust (no unsquashfs, no
//! root, any platform). Such a bundle is one squashfs image holding, per gzip layer, the
//! layer's extracted tree (`<hex>/`) and its vbatts/tar-split JSON (`<hex>_tar-split.json.gz`),
//! and every other blob as a file (`<hex>.json` for configs, `<hex>.raw` …).
//!
//! The original gzip of a layer is gone, so its digest cannot be given back: a layer is rebuilt
//! as its exact uncompressed tar (checked against the config's `rootfs.diff_ids`), gzip'd anew
//! (deterministically: the same layer always gets the same new digest from this tool), and the
//! manifests that name it are rewritten with the new digest and size, so their digests change
//! too. The original did the same, and left the old sizes in. What comes out is a plain tar
//! bundle in a scratch directory with a meta of our format, so upload, load, verify and serve
//! read it like any other; the caller learns which images changed and why.
//!
//! An incremental squashfs bundle leaves layers to its base. When that base is a squashfs
//! bundle too, those layers got new digests when the base was uploaded; they are recomputed
//! from the base's data file (hashing only, nothing stored), which therefore must sit next to
//! the increment, as its meta does.

mod image;
mod tar_split;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use registry::manifest::{self, Descriptor, ParsedManifest};
use registry::{Digest, DigestHasher};
use serde_json::Value;

use crate::bundle::compress::{Hashing, Unpacked, scratch_directory};
use crate::bundle::meta::{BaseBlob, BaseRef, BundleMeta, Compressor, Entry, FORMAT_VERSION};
use crate::bundle::parts::{check_parts, entry_name};
use crate::error::{Error, Result};
use crate::plan::{ListOptions, plan_line};
use image::Image;

/// Bases followed from an increment before giving up (a chain that loops ends here).
const MAX_BASE_DEPTH: usize = 16;

/// The largest config read into memory to learn its diff_ids.
const MAX_CONFIG: u64 = 64 << 20;

/// A problem with a squashfs bundle, naming its data file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct SquashfsError {
    pub file: PathBuf,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("not a readable squashfs image: {0}")]
    Image(String),
    #[error("its data is compressed with {0}; only gzip (mksquashfs's default) is read")]
    Compression(String),
    #[error("the meta lists {0} data files; a squashfs bundle has exactly one")]
    DataFiles(usize),
    #[error("cannot read it: {0}")]
    Io(io::Error),
    #[error("layer {layer}: its tar-split is damaged: {detail}")]
    TarSplit { layer: String, detail: String },
    #[error("layer {layer}: the tar-split names {name:?}, a path outside the layer's directory")]
    UnsafePath { layer: String, name: String },
    #[error("layer {layer}: file {name:?} is not in the image")]
    MissingFile { layer: String, name: String },
    #[error("layer {layer}: file {name:?} has {actual} bytes, the tar-split says {expected}")]
    FileSize {
        layer: String,
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer {layer}: file {name:?} does not match the CRC-64 in the tar-split")]
    Checksum { layer: String, name: String },
    #[error(
        "layer {layer}: the rebuilt tar has sha256 {actual}, but image {image} lists diff_id {expected}"
    )]
    DiffId {
        layer: String,
        image: String,
        expected: String,
        actual: String,
    },
    #[error("image {image}: {detail}")]
    Config { image: String, detail: String },
    #[error("blob {blob}: {detail}")]
    Blob { blob: String, detail: String },
    #[error(
        "layer {layer} is left to base bundle {base}, which is not next to it; the layers of a \
         squashfs base got new digests when it was uploaded, and only its data file tells them"
    )]
    BaseNeeded { layer: String, base: String },
    #[error("manifest of {image} cannot be rewritten: {detail}")]
    Manifest { image: String, detail: String },
}

impl Problem {
    /// Carries a problem through `io::Read`, to be taken back out by [`Problem::from_io`].
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    pub(crate) fn from_io(error: io::Error) -> Problem {
        if error.get_ref().is_some_and(|inner| inner.is::<Problem>()) {
            let inner = error.into_inner().expect("checked above");
            *inner.downcast::<Problem>().expect("checked above")
        } else {
            Problem::Io(error)
        }
    }
}

/// Why a manifest got a new digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteReason {
    /// Its layers were re-compressed from the squashfs bundle's unpacked files; the
    /// uncompressed content (the config's diff_ids) is unchanged.
    LayersRecompressed,
    /// An index whose platform manifests were rewritten for that reason.
    ChildrenRewritten,
}

/// An image whose manifest got a new digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenImage {
    /// The image key in the meta, or a child manifest's old digest.
    pub image: String,
    pub old: Digest,
    pub new: Digest,
    pub reason: RewriteReason,
    /// Layer digests, old → new.
    pub layers: Vec<(Digest, Digest)>,
}

/// A squashfs bundle as a plain tar bundle.
#[derive(Debug)]
pub struct Converted {
    /// Describes the data file in `scratch` (our format, `entries` for every blob).
    pub meta: BundleMeta,
    pub scratch: Unpacked,
    pub rewritten: Vec<RewrittenImage>,
}

/// The data file of a squashfs bundle's meta.
fn data_file(meta: &BundleMeta, meta_path: &Path) -> Result<(String, PathBuf)> {
    let mut files = meta.data_file_paths(meta_path)?;
    if files.len() != 1 {
        return Err(Error::from(SquashfsError {
            file: meta_path.to_path_buf(),
            problem: Problem::DataFiles(files.len()),
        }));
    }
    Ok(files.remove(0))
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A layer stored as tar-split + files, in image `0` (this bundle) or a base's.
    Layer(usize),
    /// A file named `<hex><suffix>`, bytes as they were.
    Raw(usize, String),
    /// In a base that is not a squashfs bundle: on the target under its own digest.
    Kept,
    /// In a base whose files are not here.
    BaseMissing(String),
    /// Nowhere: the meta names it but no data file holds it.
    Missing,
}

struct Opened {
    meta: BundleMeta,
    squashfs: PathBuf,
    image: Image,
}

/// This bundle's image and the squashfs bases opened so far.
struct Images {
    directory: PathBuf,
    opened: Vec<Opened>,
    by_name: HashMap<String, Option<usize>>,
}

const RAW_SUFFIXES: [&str; 5] = [".json", ".raw", ".tar", ".tar.gz", ".tar.zst"];

impl Images {
    fn fail(&self, index: usize, problem: Problem) -> Error {
        Error::from(SquashfsError {
            file: self.opened[index].squashfs.clone(),
            problem,
        })
    }

    /// Opens base meta `name` if it is a squashfs bundle next to this one: `Ok(None)` for a
    /// base of another kind, `Err(name)` for one that is not here.
    fn base(&mut self, name: &str) -> Result<Option<usize>, String> {
        if let Some(known) = self.by_name.get(name) {
            return Ok(*known);
        }
        let meta_path = self.directory.join(name);
        let meta = BundleMeta::read(&meta_path).map_err(|_| name.to_string())?;
        let opened = if meta.compressor == Compressor::Squashfs {
            let (_, squashfs) = data_file(&meta, &meta_path).map_err(|_| name.to_string())?;
            check_parts(&meta, &self.directory).map_err(|_| name.to_string())?;
            let image = Image::open(&squashfs).map_err(|_| name.to_string())?;
            self.opened.push(Opened {
                meta,
                squashfs,
                image,
            });
            Some(self.opened.len() - 1)
        } else {
            None
        };
        self.by_name.insert(name.to_string(), opened);
        Ok(opened)
    }

    fn locate(&mut self, index: usize, hex: &str, depth: usize) -> Source {
        let image = &self.opened[index].image;
        if image.file(&format!("{hex}_tar-split.json.gz")).is_some() {
            return Source::Layer(index);
        }
        if let Some(name) = RAW_SUFFIXES
            .iter()
            .map(|suffix| format!("{hex}{suffix}"))
            .find(|name| image.file(name).is_some())
        {
            return Source::Raw(index, name);
        }
        let bases: Vec<String> = self.opened[index]
            .meta
            .blobs
            .get(hex)
            .into_iter()
            .flatten()
            .filter_map(|owner| BundleMeta::base_of_marker(owner).map(str::to_string))
            .collect();
        let mut result = Source::Missing;
        for name in bases {
            match self.base(&name) {
                Ok(Some(base)) if depth < MAX_BASE_DEPTH => {
                    match self.locate(base, hex, depth + 1) {
                        Source::Missing => {}
                        found => return found,
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return Source::Kept,
                Err(name) => result = Source::BaseMissing(name),
            }
        }
        result
    }

    fn read_small(&self, index: usize, name: &str, expected: &Digest) -> Result<Vec<u8>> {
        let image = &self.opened[index].image;
        let blob = || expected.hex().to_string();
        let file = image.file(name).ok_or_else(|| {
            self.fail(
                index,
                Problem::Blob {
                    blob: blob(),
                    detail: format!("{name} is not a file"),
                },
            )
        })?;
        if file.len() > MAX_CONFIG {
            return Err(self.fail(
                index,
                Problem::Blob {
                    blob: blob(),
                    detail: format!("{} bytes, too large for a config", file.len()),
                },
            ));
        }
        let mut bytes = Vec::with_capacity(file.len() as usize);
        image
            .reader(file)
            .read_to_end(&mut bytes)
            .map_err(|e| self.fail(index, Problem::from_io(e)))?;
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(self.fail(
                index,
                Problem::Blob {
                    blob: blob(),
                    detail: format!("its bytes have digest {actual}"),
                },
            ));
        }
        Ok(bytes)
    }
}

/// The data file being written in the scratch directory: plain tar, headers written after
/// each entry's bytes, when its name (the new digest) is known.
struct ScratchTar {
    name: String,
    path: PathBuf,
    out: BufWriter<File>,
    position: u64,
}

const BLOCK: u64 = 512;

impl ScratchTar {
    fn create(directory: &Path, name: String) -> Result<ScratchTar> {
        let path = directory.join(&name);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(ScratchTar {
            name,
            path,
            out: BufWriter::new(file),
            position: 0,
        })
    }

    /// Writes one entry: `fill` writes its bytes and returns its name.
    fn entry<F>(&mut self, fill: F) -> Result<Entry>
    where
        F: FnOnce(&mut dyn Write) -> Result<String>,
    {
        let io_error = |path: &Path, e| Error::io(path, e);
        let header_at = self.position;
        self.out
            .write_all(&[0u8; BLOCK as usize])
            .map_err(|e| io_error(&self.path, e))?;
        let mut counting = Hashing {
            inner: &mut self.out,
            hasher: DigestHasher::new(),
        };
        let name = fill(&mut counting)?;
        let size = counting.hasher.len();
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        self.out
            .write_all(&vec![0u8; padding as usize])
            .map_err(|e| io_error(&self.path, e))?;
        let mut header = tar::Header::new_ustar();
        header
            .set_path(&name)
            .map_err(|e| io_error(&self.path, e))?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let end = header_at + BLOCK + size + padding;
        self.out
            .seek(SeekFrom::Start(header_at))
            .and_then(|_| self.out.write_all(header.as_bytes()))
            .and_then(|_| self.out.seek(SeekFrom::Start(end)))
            .map_err(|e| io_error(&self.path, e))?;
        self.position = end;
        Ok(Entry {
            file: self.name.clone(),
            offset: header_at + BLOCK,
            size,
        })
    }

    fn finish(mut self) -> Result<u64> {
        self.out
            .write_all(&[0u8; 2 * BLOCK as usize])
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(self.position + 2 * BLOCK)
    }
}

/// A layer rebuilt and gzip'd anew.
#[derive(Debug, Clone)]
struct Recompressed {
    digest: Digest,
    size: u64,
    diff_id: Digest,
    /// Where it was stored; `None` when it only was hashed (a base's layer).
    entry: Option<Entry>,
}

/// Rebuilds layer `hex` of image `index`, gzips it into `out`, returns (diff_id, digest, size).
fn recompress(
    images: &Images,
    index: usize,
    hex: &str,
    out: &mut dyn Write,
) -> Result<(Digest, Digest, u64)> {
    let image = &images.opened[index].image;
    let split_name = format!("{hex}_tar-split.json.gz");
    let split_file = image.file(&split_name).ok_or_else(|| {
        images.fail(
            index,
            Problem::MissingFile {
                layer: hex.to_string(),
                name: split_name.clone(),
            },
        )
    })?;
    let split = BufReader::new(flate2::read::GzDecoder::new(image.reader(split_file)));
    let compressed = Hashing {
        inner: out,
        hasher: DigestHasher::new(),
    };
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(compressed, flate2::Compression::default());
    let mut plain = Hashing {
        inner: gzip,
        hasher: DigestHasher::new(),
    };
    tar_split::reassemble(split, image, hex, &mut plain).map_err(|p| images.fail(index, p))?;
    let diff_id = plain.hasher.finish();
    let compressed = plain
        .inner
        .finish()
        .map_err(|e| images.fail(index, Problem::Io(e)))?;
    let size = compressed.hasher.len();
    Ok((diff_id, compressed.hasher.finish(), size))
}

/// The diff_ids of an image config.
fn diff_ids(config: &[u8], image: &str) -> std::result::Result<Vec<String>, Problem> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|config| config.rootfs.diff_ids)
        .map_err(|e| Problem::Config {
            image: image.to_string(),
            detail: format!("its config has no readable rootfs.diff_ids: {e}"),
        })
}

/// Whether the original stored a layer as tar-split (`GetBlobSuffix`'s `.tar.gz` rule): these
/// are the layers whose digests change.
pub fn is_recompressed_layer(descriptor: &Descriptor) -> bool {
    descriptor.media_type.ends_with("tar.gzip") && descriptor.size > 32
}

/// What the conversion has decided so far.
struct Conversion {
    images: Images,
    tar: ScratchTar,
    layers: HashMap<String, Recompressed>,
    /// Carried blobs (config and raw layers), hex → entry.
    copied: BTreeMap<String, Entry>,
    /// Blobs left to a base, old hex → size.
    assumed: BTreeMap<String, u64>,
}

impl Conversion {
    fn copy_raw(&mut self, index: usize, name: &str, descriptor: &Descriptor) -> Result<()> {
        let hex = descriptor.digest.hex().to_string();
        if self.copied.contains_key(&hex) {
            return Ok(());
        }
        let images = &self.images;
        let image = &images.opened[index].image;
        let file = image.file(name).expect("located by name");
        let entry_file = entry_name(&hex, &descriptor.media_type, file.len());
        let entry = self.tar.entry(|out| {
            let mut hashing = Hashing {
                inner: out,
                hasher: DigestHasher::new(),
            };
            io::copy(&mut image.reader(file), &mut hashing)
                .map_err(|e| images.fail(index, Problem::from_io(e)))?;
            let actual = hashing.hasher.finish();
            if actual != descriptor.digest {
                return Err(images.fail(
                    index,
                    Problem::Blob {
                        blob: hex.clone(),
                        detail: format!("{name} has digest {actual}"),
                    },
                ));
            }
            Ok(entry_file)
        })?;
        self.copied.insert(hex, entry);
        Ok(())
    }

    /// Converts the blobs of one image manifest; returns old → new layer digests that changed.
    fn image(
        &mut self,
        key: &str,
        image: &manifest::ImageManifest,
    ) -> Result<Vec<(Digest, Digest, u64)>> {
        let own = 0;
        let mut config_source = None;
        for descriptor in image.blobs() {
            let hex = descriptor.digest.hex();
            let source = self.images.locate(own, hex, 0);
            match &source {
                Source::Raw(0, name) => {
                    let name = name.clone();
                    self.copy_raw(0, &name, descriptor)?;
                }
                Source::Raw(_, _) | Source::Kept => {
                    self.assumed.insert(hex.to_string(), descriptor.size);
                }
                Source::BaseMissing(base) if is_recompressed_layer(descriptor) => {
                    return Err(self.images.fail(
                        own,
                        Problem::BaseNeeded {
                            layer: hex.to_string(),
                            base: base.clone(),
                        },
                    ));
                }
                Source::BaseMissing(_) => {
                    self.assumed.insert(hex.to_string(), descriptor.size);
                }
                Source::Layer(_) | Source::Missing => {}
            }
            if descriptor.digest == image.config.digest {
                config_source = Some(source);
            }
        }

        let rebuilt: Vec<(usize, &Descriptor, usize)> = image
            .layers
            .iter()
            .enumerate()
            .filter_map(
                |(position, layer)| match self.images.locate(own, layer.digest.hex(), 0) {
                    Source::Layer(index) => Some((position, layer, index)),
                    _ => None,
                },
            )
            .collect();
        if rebuilt.is_empty() {
            return Ok(Vec::new());
        }
        let config = match config_source {
            Some(Source::Raw(index, name)) => {
                self.images.read_small(index, &name, &image.config.digest)?
            }
            _ => {
                return Err(self.images.fail(
                    own,
                    Problem::Config {
                        image: key.to_string(),
                        detail: format!(
                            "its config {} is not in the bundle or a squashfs base, so its \
                             layers cannot be checked",
                            image.config.digest.short()
                        ),
                    },
                ));
            }
        };
        let diff_ids = diff_ids(&config, key).map_err(|p| self.images.fail(own, p))?;
        if diff_ids.len() != image.layers.len() {
            return Err(self.images.fail(
                own,
                Problem::Config {
                    image: key.to_string(),
                    detail: format!(
                        "its config lists {} diff_ids for {} layers",
                        diff_ids.len(),
                        image.layers.len()
                    ),
                },
            ));
        }
        let mut changed = Vec::new();
        for (position, layer, index) in rebuilt {
            let hex = layer.digest.hex().to_string();
            let recompressed = match self.layers.get(&hex) {
                Some(done) => done.clone(),
                None => {
                    let done = if index == own {
                        let images = &self.images;
                        let mut result = None;
                        let entry = self.tar.entry(|out| {
                            let (diff_id, digest, size) = recompress(images, index, &hex, out)?;
                            let name = entry_name(digest.hex(), &layer.media_type, size);
                            result = Some((diff_id, digest, size));
                            Ok(name)
                        })?;
                        let (diff_id, digest, size) = result.expect("set by the entry");
                        Recompressed {
                            digest,
                            size,
                            diff_id,
                            entry: Some(entry),
                        }
                    } else {
                        let (diff_id, digest, size) =
                            recompress(&self.images, index, &hex, &mut io::sink())?;
                        Recompressed {
                            digest,
                            size,
                            diff_id,
                            entry: None,
                        }
                    };
                    self.layers.insert(hex.clone(), done.clone());
                    done
                }
            };
            if recompressed.diff_id.as_str() != diff_ids[position] {
                return Err(self.images.fail(
                    index,
                    Problem::DiffId {
                        layer: hex,
                        image: key.to_string(),
                        expected: diff_ids[position].clone(),
                        actual: recompressed.diff_id.to_string(),
                    },
                ));
            }
            changed.push((layer.digest.clone(), recompressed.digest, recompressed.size));
        }
        Ok(changed)
    }
}

/// `text` with each descriptor under `field` whose digest is in `changes` given the new digest
/// and size. The JSON is parsed and written back (compact, keys sorted); everything else in it,
/// media types included, stays.
fn rewrite_descriptors(
    text: &str,
    field: &str,
    changes: &HashMap<Digest, (Digest, u64)>,
    image: &str,
) -> std::result::Result<Option<String>, Problem> {
    let fail = |detail: String| Problem::Manifest {
        image: image.to_string(),
        detail,
    };
    let mut value: Value = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let mut touched = false;
    if let Some(descriptors) = value.get_mut(field).and_then(Value::as_array_mut) {
        for descriptor in descriptors {
            let old = descriptor
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|d| d.parse::<Digest>().ok());
            if let Some((digest, size)) = old.and_then(|old| changes.get(&old)) {
                descriptor["digest"] = Value::String(digest.to_string());
                descriptor["size"] = Value::from(*size);
                touched = true;
            }
        }
    }
    if !touched {
        return Ok(None);
    }
    serde_json::to_string(&value)
        .map(Some)
        .map_err(|e| fail(e.to_string()))
}

/// Converts the squashfs bundle whose meta (already read) is at `meta_path` into a plain tar
/// bundle in a scratch directory. Data file sizes are checked by the caller.
pub fn convert(meta: &BundleMeta, meta_path: &Path) -> Result<Converted> {
    let directory = crate::bundle::meta::bundle_dir(meta_path);
    let (data_name, squashfs) = data_file(meta, meta_path)?;
    let image = Image::open(&squashfs).map_err(|problem| {
        Error::from(SquashfsError {
            file: squashfs.clone(),
            problem,
        })
    })?;
    let scratch = scratch_directory()?;
    let tar_name = format!(
        "{}.tar",
        data_name.strip_suffix(".squashfs").unwrap_or(&data_name)
    );
    let tar = ScratchTar::create(&scratch.directory, tar_name.clone())?;
    let mut conversion = Conversion {
        images: Images {
            directory,
            opened: vec![Opened {
                meta: meta.clone(),
                squashfs,
                image,
            }],
            by_name: HashMap::new(),
        },
        tar,
        layers: HashMap::new(),
        copied: BTreeMap::new(),
        assumed: BTreeMap::new(),
    };

    // Children of indexes first, so the indexes can point at their new digests.
    let mut rewritten = Vec::new();
    let mut manifest_changes: HashMap<Digest, (Digest, u64)> = HashMap::new();
    let mut child_manifests = BTreeMap::new();
    let mut media_types = meta.media_types.clone();
    let convert_image = |conversion: &mut Conversion,
                         label: String,
                         media_type: std::result::Result<String, registry::Error>,
                         text: &str|
     -> Result<Option<(String, RewrittenImage)>> {
        let Ok(media_type) = media_type else {
            return Ok(None);
        };
        let Ok(ParsedManifest::Image(parsed)) =
            manifest::parse(&media_type, text.as_bytes(), &label)
        else {
            return Ok(None);
        };
        let changed = conversion.image(&label, &parsed)?;
        if changed.is_empty() {
            return Ok(None);
        }
        let changes: HashMap<Digest, (Digest, u64)> = changed
            .iter()
            .map(|(old, new, size)| (old.clone(), (new.clone(), *size)))
            .collect();
        let new_text = rewrite_descriptors(text, "layers", &changes, &label)
            .map_err(|p| conversion.images.fail(0, p))?
            .unwrap_or_else(|| text.to_string());
        let record = RewrittenImage {
            image: label,
            old: Digest::of(text.as_bytes()),
            new: Digest::of(new_text.as_bytes()),
            reason: RewriteReason::LayersRecompressed,
            layers: changed
                .into_iter()
                .map(|(old, new, _)| (old, new))
                .collect(),
        };
        Ok(Some((new_text, record)))
    };
    for (digest, text) in &meta.child_manifests {
        let media_type = meta.manifest_media_type(digest, text);
        match convert_image(&mut conversion, digest.clone(), media_type, text)? {
            Some((new_text, record)) => {
                manifest_changes.insert(
                    record.old.clone(),
                    (record.new.clone(), new_text.len() as u64),
                );
                if let Some(media_type) = media_types.remove(digest) {
                    media_types.insert(record.new.to_string(), media_type);
                }
                child_manifests.insert(record.new.to_string(), new_text);
                rewritten.push(record);
            }
            None => {
                child_manifests.insert(digest.clone(), text.clone());
            }
        }
    }
    let mut manifests = BTreeMap::new();
    for (key, text) in &meta.manifests {
        let media_type = meta.manifest_media_type(key, text);
        let is_index = matches!(
            media_type
                .as_ref()
                .ok()
                .map(|m| manifest::parse(m, text.as_bytes(), key)),
            Some(Ok(ParsedManifest::Index(_)))
        );
        if is_index {
            let new_text = rewrite_descriptors(text, "manifests", &manifest_changes, key)
                .map_err(|p| conversion.images.fail(0, p))?;
            if let Some(new_text) = new_text {
                rewritten.push(RewrittenImage {
                    image: key.clone(),
                    old: Digest::of(text.as_bytes()),
                    new: Digest::of(new_text.as_bytes()),
                    reason: RewriteReason::ChildrenRewritten,
                    layers: Vec::new(),
                });
                manifests.insert(key.clone(), new_text);
            } else {
                manifests.insert(key.clone(), text.clone());
            }
            continue;
        }
        match convert_image(&mut conversion, key.clone(), media_type, text)? {
            Some((new_text, record)) => {
                manifests.insert(key.clone(), new_text);
                rewritten.push(record);
            }
            None => {
                manifests.insert(key.clone(), text.clone());
            }
        }
    }

    let Conversion {
        images,
        tar,
        layers,
        copied,
        assumed,
    } = conversion;
    let size = tar.finish()?;

    let mut converted = BundleMeta {
        format: Some(FORMAT_VERSION),
        created: meta.created.clone(),
        compressor: Compressor::Tar,
        manifests,
        child_manifests,
        media_types,
        ..BundleMeta::default()
    };
    converted.datafiles.insert(tar_name, size);
    let owners = |hex: &str| meta.blobs.get(hex).cloned().unwrap_or_default();
    for (hex, entry) in copied {
        converted.blobs.insert(hex.clone(), owners(&hex));
        converted.entries.insert(hex, entry);
    }
    let mut base_blob_sizes: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for (old, layer) in &layers {
        let new = layer.digest.hex().to_string();
        match &layer.entry {
            Some(entry) => {
                converted.blobs.insert(new.clone(), owners(old));
                converted.entries.insert(new, entry.clone());
            }
            None => {
                base_blob_sizes.insert(new, (layer.size, old.clone()));
            }
        }
    }
    for (hex, size) in assumed {
        base_blob_sizes.insert(hex.clone(), (size, hex));
    }
    // Where each base blob went on the target: the repositories the base put it under.
    let mut base_metas: HashMap<String, Option<BundleMeta>> = HashMap::new();
    for (new, (size, old)) in base_blob_sizes {
        let markers = owners(&old);
        let mut repositories = Vec::new();
        for name in markers.iter().filter_map(|o| BundleMeta::base_of_marker(o)) {
            let base = base_metas
                .entry(name.to_string())
                .or_insert_with(|| BundleMeta::read(&images.directory.join(name)).ok());
            let keys = base.as_ref().and_then(|base| base.blobs.get(&old));
            repositories.extend(
                keys.into_iter()
                    .flatten()
                    .filter(|owner| BundleMeta::base_of_marker(owner).is_none())
                    .filter_map(|key| plan_line(key, &ListOptions::default()).ok())
                    .map(|pair| pair.source.repository),
            );
        }
        repositories.sort();
        repositories.dedup();
        converted.blobs.insert(new.clone(), markers);
        converted.base_blobs.insert(
            new,
            BaseBlob {
                size: Some(size),
                repositories,
            },
        );
    }
    let mut bases: Vec<String> = meta
        .blobs
        .values()
        .flatten()
        .filter_map(|owner| BundleMeta::base_of_marker(owner).map(str::to_string))
        .collect();
    bases.sort();
    bases.dedup();
    converted.bases = bases
        .into_iter()
        .map(|name| BaseRef {
            meta: name,
            format: None,
        })
        .collect();
    Ok(Converted {
        meta: converted,
        scratch,
        rewritten,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::original_tools;
    use crate::bundle::parts::open_entry;
    use registry::manifest::ImageManifest;

    const FULL: &str = "img_full_202612020150_meta.yaml";
    const INCR: &str = "img_incr_202612020150_meta.yaml";

    fn fixture(name: &str) -> PathBuf {
        original_tools("orig-squashfs")
            .join("data/20261202")
            .join(name)
    }

    fn convert_fixture(name: &str) -> Converted {
        let path = fixture(name);
        convert(&BundleMeta::read(&path).unwrap(), &path).unwrap()
    }

    /// sha256 of the gunzip'd bytes of an entry of a converted bundle.
    fn diff_id_of_entry(converted: &Converted, hex: &str) -> Digest {
        let entry = &converted.meta.entries[hex];
        let reader = open_entry(&converted.scratch.directory, entry).unwrap();
        let mut hashing = Hashing {
            inner: io::sink(),
            hasher: DigestHasher::new(),
        };
        io::copy(&mut flate2::read::GzDecoder::new(reader), &mut hashing).unwrap();
        hashing.hasher.finish()
    }

    #[test]
    fn fixture_layers_reassemble_to_their_diff_ids() {
        let meta = BundleMeta::read(&fixture(FULL)).unwrap();
        let image = Image::open(&fixture("img_full_202612020150.squashfs")).unwrap();
        let mut checked = 0;
        for text in meta.manifests.values() {
            let parsed: ImageManifest = serde_json::from_str(text).unwrap();
            let config_name = format!("{}.json", parsed.config.digest.hex());
            let file = image.file(&config_name).unwrap();
            let mut config = Vec::new();
            image.reader(file).read_to_end(&mut config).unwrap();
            assert_eq!(Digest::of(&config), parsed.config.digest);
            let diff_ids = diff_ids(&config, "img").unwrap();
            for (layer, diff_id) in parsed.layers.iter().zip(&diff_ids) {
                let hex = layer.digest.hex();
                let split = image.file(&format!("{hex}_tar-split.json.gz")).unwrap();
                let split = BufReader::new(flate2::read::GzDecoder::new(image.reader(split)));
                let mut tar = Hashing {
                    inner: io::sink(),
                    hasher: DigestHasher::new(),
                };
                tar_split::reassemble(split, &image, hex, &mut tar).unwrap();
                assert_eq!(tar.hasher.finish().as_str(), diff_id, "layer {hex}");
                checked += 1;
            }
        }
        assert_eq!(checked, 12, "4 layers of 3 images");
    }

    #[test]
    fn converts_the_full_fixture_into_a_tar_bundle() {
        let source = BundleMeta::read(&fixture(FULL)).unwrap();
        let converted = convert_fixture(FULL);
        let meta = &converted.meta;
        meta.validate(Path::new("converted")).unwrap();
        check_parts(meta, &converted.scratch.directory).unwrap();
        assert_eq!(converted.rewritten.len(), 3, "every image changes");
        assert!(meta.base_blobs.is_empty());
        for record in &converted.rewritten {
            let old_text = &source.manifests[&record.image];
            let new_text = &meta.manifests[&record.image];
            assert_eq!(record.old, Digest::of(old_text.as_bytes()));
            assert_eq!(record.new, Digest::of(new_text.as_bytes()));
            assert_ne!(record.old, record.new);
            let old: ImageManifest = serde_json::from_str(old_text).unwrap();
            let new: ImageManifest = serde_json::from_str(new_text).unwrap();
            let new_value: Value = serde_json::from_str(new_text).unwrap();
            assert_eq!(
                new_value["mediaType"],
                "application/vnd.docker.distribution.manifest.v2+json"
            );
            assert_eq!(new.config, old.config, "configs keep their bytes");
            assert!(meta.entries.contains_key(new.config.digest.hex()));
            assert_eq!(record.layers.len(), 4);
            for (old_layer, new_layer) in old.layers.iter().zip(&new.layers) {
                assert_eq!(new_layer.media_type, old_layer.media_type);
                assert_ne!(new_layer.digest, old_layer.digest);
                let entry = &meta.entries[new_layer.digest.hex()];
                assert_eq!(entry.size, new_layer.size, "the manifest has the new size");
                assert!(
                    record
                        .layers
                        .contains(&(old_layer.digest.clone(), new_layer.digest.clone()))
                );
            }
            // The new gzip holds the same tar: the config's diff_ids still hold.
            let config_entry = &meta.entries[new.config.digest.hex()];
            let mut config = Vec::new();
            open_entry(&converted.scratch.directory, config_entry)
                .unwrap()
                .read_to_end(&mut config)
                .unwrap();
            let diff_ids = diff_ids(&config, "x").unwrap();
            for (layer, diff_id) in new.layers.iter().zip(&diff_ids) {
                assert_eq!(
                    diff_id_of_entry(&converted, layer.digest.hex()).as_str(),
                    diff_id
                );
            }
        }
        // Every blob stored has the digest it is filed under.
        for (hex, entry) in &meta.entries {
            let mut hashing = Hashing {
                inner: io::sink(),
                hasher: DigestHasher::new(),
            };
            io::copy(
                &mut open_entry(&converted.scratch.directory, entry).unwrap(),
                &mut hashing,
            )
            .unwrap();
            assert_eq!(hashing.hasher.finish().hex(), hex);
        }
        assert_eq!(meta.entries.len(), 3 + 8, "3 configs, 8 distinct layers");

        // The same bundle converts to the same digests: an increment relies on it.
        let again = convert_fixture(FULL);
        assert_eq!(again.rewritten, converted.rewritten);
    }

    #[test]
    fn an_increment_points_at_the_digests_its_squashfs_base_got() {
        let full = convert_fixture(FULL);
        let incr = convert_fixture(INCR);
        let source = BundleMeta::read(&fixture(INCR)).unwrap();
        let new_digest: HashMap<Digest, Digest> = full
            .rewritten
            .iter()
            .chain(&incr.rewritten)
            .flat_map(|r| r.layers.iter().cloned())
            .collect();
        assert_eq!(incr.rewritten.len(), 5);
        // img0..img2 get exactly the manifests the full bundle's conversion gave them.
        for record in &full.rewritten {
            assert_eq!(
                incr.meta.manifests[&record.image],
                full.meta.manifests[&record.image]
            );
        }
        // Only img3's and img4's own blobs are carried; the rest is left to the base, under
        // the new digests, with the repositories the base put them in.
        assert_eq!(incr.meta.entries.len(), 6);
        assert_eq!(
            incr.meta.bases,
            vec![BaseRef {
                meta: FULL.into(),
                format: None
            }]
        );
        for key in [
            "http://127.0.0.1:5901/team/img3:latest",
            "http://127.0.0.1:5901/team/img4:latest",
        ] {
            let old: ImageManifest = serde_json::from_str(&source.manifests[key]).unwrap();
            let new: ImageManifest = serde_json::from_str(&incr.meta.manifests[key]).unwrap();
            for (old_layer, new_layer) in old.layers.iter().zip(&new.layers) {
                assert_eq!(new_digest[&old_layer.digest], new_layer.digest);
                let hex = new_layer.digest.hex();
                if let Some(base) = incr.meta.base_blobs.get(hex) {
                    assert_eq!(base.size, Some(full.meta.entries[hex].size));
                    assert!(!base.repositories.is_empty(), "{hex}");
                    assert!(base.repositories.iter().all(|r| r.starts_with("team/img")));
                } else {
                    assert!(incr.meta.entries.contains_key(hex), "{hex}");
                }
            }
        }
        let assumed: Vec<String> = incr
            .meta
            .blobs_assumed()
            .iter()
            .map(|a| a.digest.hex().to_string())
            .collect();
        assert!(
            assumed
                .iter()
                .all(|hex| full.meta.entries.contains_key(hex)),
            "{assumed:?}"
        );
    }

    /// A squashfs bundle made here, as the original lays one out, to be spoilt by the tests.
    struct Crafted {
        layer_tar: Vec<u8>,
        /// tar-split lines.
        split: Vec<Value>,
        /// Files of the extracted layer: path in the layer → bytes.
        files: Vec<(String, Vec<u8>)>,
        diff_id: String,
    }

    impl Crafted {
        fn new() -> Crafted {
            // One file over a block (data blocks and a tail in a fragment), one small.
            let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
            let small = b"hello\n".to_vec();
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, "etc/", io::empty())
                .unwrap();
            for (name, bytes) in [("etc/big.bin", &big), ("etc/hello", &small)] {
                let mut header = tar::Header::new_ustar();
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, &bytes[..]).unwrap();
            }
            let layer_tar = builder.into_inner().unwrap();
            let encode = |bytes: &[u8]| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            };
            let mut split = Vec::new();
            let mut position = 0u64;
            let mut archive = tar::Archive::new(&layer_tar[..]);
            for entry in archive.entries().unwrap() {
                let entry = entry.unwrap();
                let start = entry.raw_file_position();
                let segment = &layer_tar[position as usize..start as usize];
                split.push(serde_json::json!({"type": 2, "payload": encode(segment), "position": split.len()}));
                let size = entry.size();
                let mut crc = tar_split::Crc64::new();
                crc.update(&layer_tar[start as usize..(start + size) as usize]);
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                split.push(serde_json::json!({"type": 1, "name": name, "size": size, "payload": encode(&crc.sum()), "position": split.len()}));
                position = start + size;
            }
            split.push(serde_json::json!({"type": 2, "payload": encode(&layer_tar[position as usize..]), "position": split.len()}));
            Crafted {
                diff_id: Digest::of(&layer_tar).to_string(),
                layer_tar,
                split,
                files: vec![("etc/big.bin".into(), big), ("etc/hello".into(), small)],
            }
        }

        /// Writes `<dir>/img_full_209901010000.squashfs` and its meta; returns the meta's path.
        fn write(&self, dir: &Path) -> PathBuf {
            use backhand::compression::Compressor as Kind;
            use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gzip.write_all(&self.layer_tar).unwrap();
            let layer_gz = gzip.finish().unwrap();
            let layer = Digest::of(&layer_gz);
            let config = serde_json::to_vec(&serde_json::json!({
                "architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [self.diff_id]},
            }))
            .unwrap();
            let config_digest = Digest::of(&config);
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": config_digest.to_string()},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer_gz.len(), "digest": layer.to_string()}],
            })
            .to_string();
            let mut split_gz =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            for line in &self.split {
                writeln!(split_gz, "{line}").unwrap();
            }
            let split_gz = split_gz.finish().unwrap();

            let header = NodeHeader::new(0o755, 0, 0, 0);
            let mut fs = FilesystemWriter::default();
            fs.set_compressor(FilesystemCompressor::new(Kind::Gzip, None).unwrap());
            let hex = layer.hex();
            fs.push_dir(format!("/{hex}"), header).unwrap();
            for (name, bytes) in &self.files {
                let path = PathBuf::from(format!("/{hex}/{name}"));
                fs.push_dir_all(path.parent().unwrap(), header).unwrap();
                fs.push_file(io::Cursor::new(bytes.clone()), &path, header)
                    .unwrap();
            }
            fs.push_file(
                io::Cursor::new(split_gz),
                format!("/{hex}_tar-split.json.gz"),
                header,
            )
            .unwrap();
            fs.push_file(
                io::Cursor::new(config),
                format!("/{}.json", config_digest.hex()),
                header,
            )
            .unwrap();
            let data = "img_full_209901010000.squashfs";
            let mut out = File::create(dir.join(data)).unwrap();
            fs.write(&mut out).unwrap();
            drop(out);

            let key = "http://10.0.0.1:5000/team/crafted:1".to_string();
            let mut meta = BundleMeta {
                compressor: Compressor::Squashfs,
                ..BundleMeta::default()
            };
            meta.datafiles.insert(
                data.into(),
                std::fs::metadata(dir.join(data)).unwrap().len(),
            );
            meta.blobs.insert(hex.into(), vec![key.clone()]);
            meta.blobs
                .insert(config_digest.hex().into(), vec![key.clone()]);
            meta.manifests.insert(key, manifest);
            let meta_path = dir.join("img_full_209901010000_meta.yaml");
            meta.write_atomically(&meta_path).unwrap();
            meta_path
        }

        fn convert(&self) -> (tempfile::TempDir, Result<Converted>) {
            let dir = tempfile::tempdir().unwrap();
            let meta_path = self.write(dir.path());
            let meta = BundleMeta::read(&meta_path).unwrap();
            let result = convert(&meta, &meta_path);
            (dir, result)
        }
    }

    /// The problem of a failed conversion, after checking the message names the data file.
    fn problem_of(result: Result<Converted>) -> Problem {
        match result {
            Err(Error::Squashfs(error)) => {
                let message = error.to_string();
                assert!(message.contains(".squashfs"), "{message}");
                error.problem
            }
            Err(other) => panic!("not a squashfs error: {other}"),
            Ok(_) => panic!("converted a bad bundle"),
        }
    }

    #[test]
    fn a_crafted_bundle_converts_and_its_files_read_across_blocks() {
        let crafted = Crafted::new();
        let (_dir, result) = crafted.convert();
        let converted = result.unwrap();
        assert_eq!(converted.rewritten.len(), 1);
        let layer = &converted.rewritten[0].layers[0].1;
        assert_eq!(
            diff_id_of_entry(&converted, layer.hex()).to_string(),
            crafted.diff_id
        );
    }

    #[test]
    fn a_path_outside_the_layer_is_refused() {
        for name in ["../etc/hello", "etc/../../x", "/../etc/hello"] {
            let mut crafted = Crafted::new();
            crafted.split[5]["name"] = Value::from(name);
            let (_dir, result) = crafted.convert();
            assert!(
                matches!(problem_of(result), Problem::UnsafePath { name: ref n, .. } if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn a_file_whose_size_or_crc_differs_is_refused() {
        let mut crafted = Crafted::new();
        crafted.files[1].1 = b"hellO\n".to_vec();
        let (_dir, result) = crafted.convert();
        assert!(
            matches!(problem_of(result), Problem::Checksum { ref name, .. } if name == "etc/hello")
        );

        let mut crafted = Crafted::new();
        crafted.files[0].1.truncate(150_000);
        let (_dir, result) = crafted.convert();
        assert!(matches!(
            problem_of(result),
            Problem::FileSize {
                expected: 200_000,
                actual: 150_000,
                ..
            }
        ));

        let mut crafted = Crafted::new();
        crafted.files.remove(1);
        let (_dir, result) = crafted.convert();
        assert!(matches!(problem_of(result), Problem::MissingFile { .. }));
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let mut crafted = Crafted::new();
        crafted.diff_id = Digest::of(b"something else").to_string();
        let (_dir, result) = crafted.convert();
        let problem = problem_of(result);
        assert!(matches!(problem, Problem::DiffId { .. }), "{problem}");
        assert!(problem.to_string().contains("team/crafted:1"), "{problem}");
    }

    #[test]
    fn a_damaged_tar_split_is_refused() {
        let mut crafted = Crafted::new();
        crafted.split.insert(2, Value::from("not an entry"));
        let (_dir, result) = crafted.convert();
        assert!(matches!(problem_of(result), Problem::TarSplit { .. }));

        let mut crafted = Crafted::new();
        crafted.split[0]["payload"] = Value::from("***");
        let (_dir, result) = crafted.convert();
        assert!(matches!(problem_of(result), Problem::TarSplit { .. }));
    }

    #[test]
    fn an_increment_without_its_squashfs_base_says_which_file_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        for name in [INCR, "img_incr_202612020150.squashfs"] {
            std::fs::copy(fixture(name), dir.path().join(name)).unwrap();
        }
        let meta_path = dir.path().join(INCR);
        let result = convert(&BundleMeta::read(&meta_path).unwrap(), &meta_path);
        let problem = problem_of(result);
        assert!(
            matches!(problem, Problem::BaseNeeded { ref base, .. } if base == FULL),
            "{problem}"
        );
    }

    #[test]
    fn damaged_images_give_errors_not_panics() {
        let original = std::fs::read(fixture("img_full_202612020150.squashfs")).unwrap();
        let meta = BundleMeta::read(&fixture(FULL)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let meta_path = dir.path().join(FULL);
        let data = dir.path().join("img_full_202612020150.squashfs");
        let mut failures = 0;
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            original[..96].to_vec(),
            original[..original.len() / 2].to_vec(),
            vec![0u8; original.len()],
        ];
        // Spoil one byte at a time: the superblock's fields, then a stride over the rest.
        for at in (0..96).chain((96..original.len()).step_by(1_543)) {
            let mut bytes = original.clone();
            bytes[at] ^= 0x5a;
            cases.push(bytes);
        }
        for bytes in &cases {
            std::fs::write(&data, bytes).unwrap();
            match convert(&meta, &meta_path) {
                Ok(_) => {}
                Err(Error::Squashfs(error)) => {
                    assert!(error.to_string().contains("img_full_202612020150.squashfs"));
                    failures += 1;
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert!(
            failures >= 4,
            "{failures} of {} damaged images refused",
            cases.len()
        );
    }

    #[test]
    fn a_squashfs_base_of_a_new_save_offers_only_blobs_that_kept_their_digests() {
        let full = crate::bundle::writer::BaseBundle::from_meta(&fixture(FULL)).unwrap();
        let source = BundleMeta::read(&fixture(FULL)).unwrap();
        let configs: std::collections::BTreeSet<String> = source
            .manifests
            .values()
            .map(|text| {
                serde_json::from_str::<ImageManifest>(text)
                    .unwrap()
                    .config
                    .digest
                    .hex()
                    .to_string()
            })
            .collect();
        let offered: std::collections::BTreeSet<String> =
            full.blobs.keys().map(|d| d.hex().to_string()).collect();
        assert_eq!(
            offered, configs,
            "the 8 re-compressed layers are not on the target as such"
        );

        let incr = crate::bundle::writer::BaseBundle::from_meta(&fixture(INCR)).unwrap();
        assert_eq!(incr.blobs.len(), 5, "the configs of img0..img4");
    }

    #[test]
    fn images_of_another_kind_are_named_as_such() {
        let original = std::fs::read(fixture("img_full_202612020150.squashfs")).unwrap();
        let meta = BundleMeta::read(&fixture(FULL)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let meta_path = dir.path().join(FULL);
        let data = dir.path().join("img_full_202612020150.squashfs");
        let with = |at: usize, bytes: &[u8]| {
            let mut image = original.clone();
            image[at..at + bytes.len()].copy_from_slice(bytes);
            std::fs::write(&data, image).unwrap();
            match convert(&meta, &meta_path) {
                Err(Error::Squashfs(error)) => error.problem.to_string(),
                other => panic!("{other:?}"),
            }
        };
        assert!(with(20, &4u16.to_le_bytes()).contains("compressed with xz"));
        assert!(with(20, &6u16.to_le_bytes()).contains("compressed with zstd"));
        assert!(with(0, b"sqsh").contains("no squashfs magic"));
        assert!(with(28, &3u16.to_le_bytes()).contains("version 3.0"));
    }
}
