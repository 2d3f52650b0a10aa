//! The bundle meta file (`<work name>_meta.yaml`): what a bundle holds and where.
//!
//! It exists because a bundle's data files are plain tar streams of blobs with no manifests in
//! the original's format; the meta file carries the manifests (byte-exact, their sha256 is the
//! image digest on the target), the list of data files with their sizes, and who stored which
//! blob. We write a **superset** of the original tool's schema (§8.7 of the reference): every key
//! the original reads has the meaning it gives it, so the original can still upload a tar bundle
//! of single-platform images that we wrote; our additions (`format`, `entries`, `base_blobs`, …)
//! are keys the original's yaml.v2 decoder silently ignores. `docs/bundle-format.md` is the
//! specification; this module is its reader and writer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use registry::Digest;
use registry::manifest::{ImageManifest, IndexManifest};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::parts::EntryLocation;

/// Where one entry sits in the data files; the name the writer uses for `entries` values.
pub type Entry = EntryLocation;

/// The bundle format version we write. A meta without `format` was written by the original
/// tool; one with a larger number was written by a newer image-transmit and is refused, since
/// it may rely on keys we do not know.
pub const FORMAT_VERSION: u32 = 1;

/// The owner the original records for a blob that an earlier ("base") bundle carried:
/// `https://last.img/skip/it:<base meta file name>`.
pub const BASE_MARKER_PREFIX: &str = "https://last.img/skip/it:";

/// How the data files' tar stream is compressed (the `compressor` key).
///
/// The original wrote any of these; we write `tar` (default) or `zstd` (whole-stream zstd,
/// which is also what the original's `zstd` means) and read those and the original's
/// `squashfs`. The others are parsed so that an old bundle is recognised and refused with a
/// clear message rather than misread.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Compressor {
    #[default]
    Tar,
    Zstd,
    Gzip,
    Xz,
    Lz4,
    /// The original's squashfs mode (layers unpacked, re-gzipped on upload: digests change).
    Squashfs,
    /// Anything else, kept verbatim for the error message.
    Other(String),
}

impl Compressor {
    /// Reads the meta value. An empty value means `tar`, as for the original.
    pub fn parse(name: &str) -> Compressor {
        match name.trim() {
            "" | "tar" => Compressor::Tar,
            "zstd" => Compressor::Zstd,
            "gzip" => Compressor::Gzip,
            "xz" => Compressor::Xz,
            "lz4" => Compressor::Lz4,
            "squashfs" => Compressor::Squashfs,
            _ => Compressor::Other(name.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Compressor::Tar => "tar",
            Compressor::Zstd => "zstd",
            Compressor::Gzip => "gzip",
            Compressor::Xz => "xz",
            Compressor::Lz4 => "lz4",
            Compressor::Squashfs => "squashfs",
            Compressor::Other(name) => name,
        }
    }

    /// Whether this tool reads bundles with this compressor.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            Compressor::Tar
                | Compressor::Zstd
                | Compressor::Gzip
                | Compressor::Xz
                | Compressor::Lz4
                | Compressor::Squashfs
        )
    }

    /// Refuses a compressor we cannot read, naming the meta file and what to do instead.
    pub fn ensure_supported(&self, meta_path: &Path) -> Result<(), MetaError> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(MetaError::UnsupportedCompressor {
                path: meta_path.to_path_buf(),
                compressor: self.as_str().to_string(),
            })
        }
    }
}

impl fmt::Display for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Compressor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Compressor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Compressor, D::Error> {
        let name = Option::<String>::deserialize(deserializer)?;
        Ok(Compressor::parse(name.as_deref().unwrap_or("")))
    }
}

/// The original's `blobdoing` map of in-flight claims: always empty in a finished file. We
/// write `{}` so the key is where the original puts it, and ignore whatever a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobDoing;

impl Serialize for BlobDoing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BTreeMap::<String, String>::new().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BlobDoing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BlobDoing, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(BlobDoing)
    }
}

/// A bundle this one builds on (`bases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    /// The base's meta file name (no directory), as in the base markers.
    pub meta: String,
    /// The base's `format`; `None` when the base was written by the original tool.
    #[serde(default)]
    pub format: Option<u32>,
}

/// A blob this bundle assumes the target already has (`base_blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BaseBlob {
    /// Its size, when known (an original base does not record sizes of blobs no manifest of
    /// it references).
    #[serde(default)]
    pub size: Option<u64>,
    /// Source repository paths (`team/app0`) of the base images that used it: where an upload
    /// can look for it on the target, or mount it from.
    #[serde(default, deserialize_with = "nullable")]
    pub repositories: Vec<String>,
}

/// The meta file, as the original wrote it plus our optional additions. Unknown keys are
/// ignored when reading (a later minor revision may add some; the original ignored ours).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BundleMeta {
    /// Data file name (relative to the meta's directory) → size in bytes.
    #[serde(deserialize_with = "nullable")]
    pub datafiles: BTreeMap<String, u64>,
    pub compressor: Compressor,
    /// Blob hex (no `sha256:`) → owners: the image keys that stored it, or base markers
    /// ([`BundleMeta::base_marker`]) for blobs an earlier bundle carried.
    #[serde(deserialize_with = "nullable")]
    pub blobs: BTreeMap<String, Vec<String>>,
    /// Image key (`http://10.45.80.1/public/alpine:3.11`) → the top-level manifest, byte-exact.
    #[serde(deserialize_with = "nullable")]
    pub manifests: BTreeMap<String, String>,
    pub blobdoing: BlobDoing,

    /// Our format version; absent in the original's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<u32>,
    /// Data file name → sha256 hex of the whole file.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub datafile_sha256: BTreeMap<String, String>,
    /// `sha256:…` digest → child manifest of a multi-platform index, byte-exact.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub child_manifests: BTreeMap<String, String>,
    /// Image key or child digest → media type; otherwise detected from the JSON.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub media_types: BTreeMap<String, String>,
    /// Blob or stored-manifest hex → where its bytes sit, so upload needs no scan.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub entries: BTreeMap<String, EntryLocation>,
    /// The bundles this one builds on (incremental).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<BaseRef>,
    /// Blob hex → every blob this bundle assumes the target already has.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub base_blobs: BTreeMap<String, BaseBlob>,
    /// When it was written, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Made from an OCI archive ([`crate::bundle::oci_archive`]), not read from a meta file:
    /// its one data file may hold directories and hard links, which are passed over.
    #[serde(skip)]
    pub oci_archive: bool,
}

/// A blob stored in this bundle's data files (see [`BundleMeta::blobs_carried`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedBlob<'a> {
    pub digest: Digest,
    /// Owners from `blobs` (empty when only `entries` names it).
    pub owners: &'a [String],
    /// Its location from `entries` (ours); `None` for the original's, found by scanning.
    pub entry: Option<&'a EntryLocation>,
}

/// A blob the bundle relies on the target having already (see [`BundleMeta::blobs_assumed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedBlob {
    pub digest: Digest,
    /// Known from `base_blobs` (ours) or from a manifest of this bundle that references it.
    pub size: Option<u64>,
    /// Where the base says it went (ours only; empty for the original's).
    pub repositories: Vec<String>,
    /// Base meta file names named by the blob's base markers.
    pub bases: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read or write bundle meta file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("bundle meta file {}{}: {detail}", path.display(), location(*line, *column))]
    Parse {
        path: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        detail: String,
    },

    #[error("bundle meta file {}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },

    /// Larger than [`MAX_META_BYTES`], or more entries than the parse budget allows.
    #[error(
        "bundle meta file {} is {bytes} bytes, or holds more entries, than any real bundle's \
         ({limit} bytes)",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },

    #[error(
        "bundle meta file {} has format {found}, newer than this image-transmit reads \
         (up to {supported}); use a newer image-transmit",
        path.display()
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "bundle {} uses compressor {compressor:?}, which this tool does not read (tar, zstd, \
         gzip, xz, lz4 and squashfs); re-save the images with compressor tar or zstd",
        path.display()
    )]
    UnsupportedCompressor { path: PathBuf, compressor: String },

    #[error("cannot write bundle meta file {}: {detail}", path.display())]
    Serialize { path: PathBuf, detail: String },
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        (Some(line), None) => format!(" (line {line})"),
        _ => String::new(),
    }
}

/// yaml.v2 writes a nil map as `{}`, but a hand-edited file may say `blobs:` (null); treat
/// null like empty instead of failing on a harmless file.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A 64-character lowercase hex string, as the original names blobs (`digest.Hex()`).
pub fn is_blob_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a data file name from a meta is a plain file name in the meta's directory. The
/// meta is untrusted input: `../../home/me/.ssh/id_rsa` must not be read and uploaded.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', ':', '\0'])
}

/// The directory a meta file's data files are in: the meta's own.
pub fn bundle_dir(meta_path: &Path) -> PathBuf {
    match meta_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The largest meta file read. A meta of 10,000 images with 30,000 blobs is ~20 MiB; the
/// parsed meta takes a few times its text, so this bounds what a hostile one can cost.
pub const MAX_META_BYTES: u64 = 64 << 20;

/// Parse options: the library's defaults guard against hostile documents sized for config
/// files; a meta of thousands of images has hundreds of thousands of nodes and tens of MiB of
/// manifests, so the size limits are raised, to a few times that (alias limits stay, they stop
/// "billion laughs"). A million nodes are ~300,000 blobs with their owners: a meta past that is
/// refused while it is read, before it is all in memory.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_META_BYTES as usize),
            max_events: 3_000_000,
            max_nodes: 1_000_000,
            max_total_scalar_bytes: MAX_META_BYTES as usize,
        },
    }
}

impl BundleMeta {
    /// An empty meta of our format, stamped with the current time.
    pub fn new_ours() -> BundleMeta {
        BundleMeta {
            format: Some(FORMAT_VERSION),
            created: Some(rfc3339_utc(SystemTime::now())),
            ..BundleMeta::default()
        }
    }

    /// Reads and validates a meta file.
    pub fn read(path: &Path) -> Result<BundleMeta, MetaError> {
        // An OCI archive is its own meta (the fork writes no meta file).
        if crate::bundle::oci_archive::is_tar(path) {
            let mut meta = crate::bundle::oci_archive::meta_of(path)?;
            meta.oci_archive = true;
            return Ok(meta);
        }
        let io_error = |source| MetaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = fs::metadata(path).map_err(io_error)?.len();
        if bytes > MAX_META_BYTES {
            return Err(MetaError::TooLarge {
                path: path.to_path_buf(),
                bytes,
                limit: MAX_META_BYTES,
            });
        }
        let text = fs::read_to_string(path).map_err(io_error)?;
        BundleMeta::parse(&text, path)
    }

    /// Parses and validates meta text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<BundleMeta, MetaError> {
        let meta: BundleMeta =
            serde_saphyr::from_str_with_options(text, parse_options()).map_err(|err| {
                if matches!(err.without_snippet(), serde_saphyr::Error::Budget { .. }) {
                    return MetaError::TooLarge {
                        path: path.to_path_buf(),
                        bytes: text.len() as u64,
                        limit: MAX_META_BYTES,
                    };
                }
                let location = err.location();
                let mut detail = err.without_snippet().to_string();
                // The position goes next to the file name; saying it twice is noise.
                if let Some(location) = location {
                    let suffix =
                        format!(" at line {}, column {}", location.line(), location.column());
                    if let Some(message) = detail.strip_suffix(&suffix) {
                        detail = message.to_owned();
                    }
                }
                MetaError::Parse {
                    path: path.to_path_buf(),
                    line: location.map(|l| l.line()),
                    column: location.map(|l| l.column()),
                    detail,
                }
            })?;
        meta.validate(path)?;
        Ok(meta)
    }

    /// Checks what serde cannot: a newer format, key shapes, and data file names that would
    /// escape the bundle's directory. Every later use can then rely on valid hex keys.
    pub fn validate(&self, path: &Path) -> Result<(), MetaError> {
        if let Some(found) = self.format
            && found > FORMAT_VERSION
        {
            return Err(MetaError::UnsupportedFormat {
                path: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        let invalid = |detail: String| MetaError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        // Nothing to upload, verify or load: an empty or cut-short file, or a save in which
        // every image failed. Passing it as "0 images, 0 faults" would tell an operator that a
        // delivery succeeded.
        if self.manifests.is_empty() {
            return Err(invalid(
                "it lists no images (an empty or cut-short meta file, or a save in which every \
                 image failed)"
                    .to_string(),
            ));
        }
        // A base marker names the base's meta file beside this one; anything else would send a
        // reader to an arbitrary path.
        if let Some(base) = self
            .blobs
            .values()
            .flatten()
            .filter_map(|owner| BundleMeta::base_of_marker(owner))
            .find(|name| !is_plain_file_name(name))
        {
            return Err(invalid(format!(
                "a blob's base bundle {base:?} is not a plain file name in the meta's directory"
            )));
        }
        if let Some(name) = self.datafiles.keys().find(|n| !is_plain_file_name(n)) {
            return Err(invalid(format!(
                "data file {name:?} is not a plain file name in the meta's directory"
            )));
        }
        let bad_hex = |section: &str, key: &str| {
            invalid(format!(
                "{section}: key {key:?} is not a 64-character lowercase sha256 hex"
            ))
        };
        for (section, keys) in [
            ("blobs", self.blobs.keys().collect::<Vec<_>>()),
            ("entries", self.entries.keys().collect()),
            ("base_blobs", self.base_blobs.keys().collect()),
        ] {
            if let Some(key) = keys.into_iter().find(|k| !is_blob_hex(k)) {
                return Err(bad_hex(section, key));
            }
        }
        if let Some(key) = self.child_manifests.keys().find(|k| {
            k.parse::<Digest>()
                .map(|d| d.as_str() != *k)
                .unwrap_or(true)
        }) {
            return Err(invalid(format!(
                "child_manifests: key {key:?} is not a sha256:<64 lowercase hex> digest"
            )));
        }
        for (name, hex) in &self.datafile_sha256 {
            if !self.datafiles.contains_key(name) {
                return Err(invalid(format!(
                    "datafile_sha256 names {name:?}, which is not in datafiles"
                )));
            }
            if !is_blob_hex(hex) {
                return Err(bad_hex("datafile_sha256", hex));
            }
        }
        for (hex, entry) in &self.entries {
            if !self.datafiles.contains_key(&entry.file) {
                return Err(invalid(format!(
                    "entries: {hex} is in {:?}, which is not in datafiles",
                    entry.file
                )));
            }
        }
        Ok(())
    }

    /// Serialises the meta as YAML that parses back to an identical meta. The check is real:
    /// a manifest whose bytes change no longer matches its digest, so we verify the text
    /// before writing, and fall back to quoted strings (no block scalars) if the readable
    /// block style ever failed to round-trip.
    pub fn to_yaml(&self) -> Result<String, String> {
        let mut last_problem = String::new();
        for block_scalars in [true, false] {
            let options = serde_saphyr::ser_options! {
                prefer_block_scalars: block_scalars,
            };
            let text = match serde_saphyr::to_string_with_options(self, options) {
                Ok(text) => text,
                Err(err) => {
                    last_problem = err.to_string();
                    continue;
                }
            };
            match serde_saphyr::from_str_with_options::<BundleMeta>(&text, parse_options()) {
                Ok(back) if back == *self => return Ok(text),
                Ok(_) => last_problem = "the YAML does not read back identically".to_string(),
                Err(err) => last_problem = err.without_snippet().to_string(),
            }
        }
        Err(last_problem)
    }

    /// Writes `<path>.partial` in the same directory, syncs it, then renames it over `path`:
    /// a reader never sees half a meta file, and a crash leaves the old one (or none).
    pub fn write_atomically(&self, path: &Path) -> Result<(), MetaError> {
        let text = self.to_yaml().map_err(|detail| MetaError::Serialize {
            path: path.to_path_buf(),
            detail,
        })?;
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let io_error = |source: io::Error| MetaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let written = (|| {
            let mut file = fs::File::create(&partial)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            if let Err(error) = fs::rename(&partial, path) {
                // Some platforms and file systems refuse to rename over an existing file;
                // removing it first opens a tiny window without a meta, which beats failing.
                if !path.exists() {
                    return Err(error);
                }
                fs::remove_file(path)?;
                fs::rename(&partial, path)?;
            }
            Ok(())
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&partial);
            return Err(io_error(source));
        }
        // Persist the rename itself (Unix); elsewhere opening a directory is not possible and
        // the rename is as durable as the platform makes it.
        #[cfg(unix)]
        if let Ok(dir) = fs::File::open(bundle_dir(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Written by the original tool (no `format` key).
    pub fn is_original(&self) -> bool {
        self.format.is_none()
    }

    /// The owner recorded for blobs a base bundle carried.
    pub fn base_marker(base_meta_file_name: &str) -> String {
        format!("{BASE_MARKER_PREFIX}{base_meta_file_name}")
    }

    /// The base meta file name of a base marker, or `None` for an image key.
    pub fn base_of_marker(owner: &str) -> Option<&str> {
        owner.strip_prefix(BASE_MARKER_PREFIX)
    }

    /// Whether a `blobs` owner list says "an earlier bundle carried it": non-empty and every
    /// owner a base marker.
    fn owners_are_bases(owners: &[String]) -> bool {
        !owners.is_empty()
            && owners
                .iter()
                .all(|owner| BundleMeta::base_of_marker(owner).is_some())
    }

    /// The data file paths (name, path), next to the meta file.
    pub fn data_file_paths(&self, meta_path: &Path) -> Result<Vec<(String, PathBuf)>, MetaError> {
        let dir = bundle_dir(meta_path);
        self.datafiles
            .keys()
            .map(|name| {
                if is_plain_file_name(name) {
                    Ok((name.clone(), dir.join(name)))
                } else {
                    Err(MetaError::Invalid {
                        path: meta_path.to_path_buf(),
                        detail: format!(
                            "data file {name:?} is not a plain file name in the meta's directory"
                        ),
                    })
                }
            })
            .collect()
    }

    /// Hex of every manifest stored as a data entry could be: the top-level manifests'
    /// digests and the child manifests' digests. These are in `entries` but are not blobs.
    pub fn manifest_hexes(&self) -> BTreeSet<String> {
        self.manifests
            .values()
            .map(|text| Digest::of(text.as_bytes()).hex().to_string())
            .chain(
                self.child_manifests
                    .keys()
                    .filter_map(|d| d.strip_prefix("sha256:").map(str::to_string)),
            )
            .collect()
    }

    /// The blobs stored in this bundle's own data files, sorted by digest:
    ///
    /// * every `blobs` key whose owner list is empty or names at least one image key (not
    ///   only base markers): the original added an image key exactly when it wrote the blob;
    /// * plus every `entries` key that is not a stored manifest (ours always lists those in
    ///   `blobs` too; this keeps a hand-trimmed `blobs` from hiding stored data).
    ///
    /// For the original's bundles this is a claim, not a fact (it recorded some blobs whose
    /// download failed): an upload still has to find each one in the data files.
    pub fn blobs_carried(&self) -> impl Iterator<Item = CarriedBlob<'_>> {
        let manifests = if self.entries.is_empty() {
            BTreeSet::new()
        } else {
            self.manifest_hexes()
        };
        let from_blobs = self
            .blobs
            .iter()
            .filter(|(_, owners)| !BundleMeta::owners_are_bases(owners))
            .map(|(hex, owners)| (hex.as_str(), owners.as_slice()));
        let from_entries = self
            .entries
            .keys()
            .filter(move |hex| !manifests.contains(*hex) && !self.blobs.contains_key(*hex))
            .map(|hex| (hex.as_str(), &[][..]));
        let mut all: Vec<(&str, &[String])> = from_blobs.chain(from_entries).collect();
        all.sort_unstable_by_key(|(hex, _)| *hex);
        all.into_iter().filter_map(|(hex, owners)| {
            Some(CarriedBlob {
                digest: Digest::from_hex(hex).ok()?,
                owners,
                entry: self.entries.get(hex),
            })
        })
    }

    /// The blobs this bundle assumes the target already has, sorted by digest.
    ///
    /// * Ours: exactly `base_blobs`.
    /// * The original's: the `blobs` keys whose owners are all base markers. It lists every
    ///   blob of its base there, used or not; sizes come from this bundle's manifests that
    ///   reference the blob and stay `None` for the others.
    pub fn blobs_assumed(&self) -> Vec<AssumedBlob> {
        let bases_of = |hex: &str| -> Vec<String> {
            self.blobs
                .get(hex)
                .into_iter()
                .flatten()
                .filter_map(|owner| BundleMeta::base_of_marker(owner).map(str::to_string))
                .collect()
        };
        if !self.is_original() {
            return self
                .base_blobs
                .iter()
                .filter_map(|(hex, base)| {
                    Some(AssumedBlob {
                        digest: Digest::from_hex(hex).ok()?,
                        size: base.size,
                        repositories: base.repositories.clone(),
                        bases: bases_of(hex),
                    })
                })
                .collect();
        }
        let sizes = self.referenced_blobs();
        self.blobs
            .iter()
            .filter(|(_, owners)| BundleMeta::owners_are_bases(owners))
            .filter_map(|(hex, _)| {
                Some(AssumedBlob {
                    digest: Digest::from_hex(hex).ok()?,
                    size: sizes.get(hex).copied(),
                    repositories: Vec::new(),
                    bases: bases_of(hex),
                })
            })
            .collect()
    }

    /// Blob hex → size for every config and layer that an image manifest of this bundle
    /// (top-level or child) references. Indexes and unparsable manifests are skipped: this is
    /// for sizes and completeness checks, upload parses manifests itself.
    pub fn referenced_blobs(&self) -> HashMap<String, u64> {
        let mut sizes = HashMap::new();
        for text in self.manifests.values().chain(self.child_manifests.values()) {
            if let Ok(image) = serde_json::from_str::<ImageManifest>(text) {
                for blob in image.blobs() {
                    sizes
                        .entry(blob.digest.hex().to_string())
                        .or_insert(blob.size);
                }
            }
        }
        sizes
    }

    /// The bytes of blobs an image of this bundle consists of (config and layers, of every
    /// platform the bundle holds for an index), each blob counted once, whether this bundle
    /// carries it or leaves it to a base. `None` for a key the meta does not hold.
    pub fn image_size(&self, key: &str) -> Option<u64> {
        let text = self.manifests.get(key)?;
        let images: Vec<ImageManifest> = match serde_json::from_str::<ImageManifest>(text) {
            Ok(image) => vec![image],
            Err(_) => serde_json::from_str::<IndexManifest>(text)
                .map(|index| index.manifests)
                .unwrap_or_default()
                .iter()
                .filter_map(|child| self.child_manifests.get(child.digest.as_str()))
                .filter_map(|child| serde_json::from_str::<ImageManifest>(child).ok())
                .collect(),
        };
        let blobs: HashMap<&str, u64> = images
            .iter()
            .flat_map(|image| image.blobs())
            .map(|blob| (blob.digest.as_str(), blob.size))
            .collect();
        // The sizes are the bundle's word: a sum past u64 panicked in a debug build and wrapped
        // to a small number in a release one. No real image comes near; saturate.
        Some(
            blobs
                .values()
                .fold(0u64, |total, &size| total.saturating_add(size)),
        )
    }

    /// The media type of a manifest of this bundle: `media_types[key]` (key = image key or
    /// child digest), else detected from the JSON as a registry response would be.
    pub fn manifest_media_type(&self, key: &str, text: &str) -> registry::Result<String> {
        match self.media_types.get(key) {
            Some(media_type) => Ok(media_type.clone()),
            None => registry::manifest::detect_media_type(None, text.as_bytes(), key),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time, without a date library: days to civil date after
/// Howard Hinnant's `civil_from_days`.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::bundle::fixtures::{FULL, INCR, fixture_dir};

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// The single-quoted scalars of the fixture's `manifests` section, unescaped by hand: an
    /// independent reading to compare the parser's bytes against.
    fn raw_single_quoted_manifests(text: &str) -> BTreeMap<String, String> {
        let section = text
            .split("\nmanifests:\n")
            .nth(1)
            .unwrap()
            .split("\nblobdoing:")
            .next()
            .unwrap();
        section
            .lines()
            .map(|line| {
                let (key, value) = line.trim_start().split_once(": '").unwrap();
                let value = value.strip_suffix('\'').unwrap().replace("''", "'");
                (key.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn reads_the_original_full_bundle_meta_byte_exactly() {
        let path = fixture_dir().join(FULL);
        let meta = BundleMeta::read(&path).unwrap();
        assert!(meta.is_original());
        assert_eq!(meta.compressor, Compressor::Tar);
        assert_eq!(meta.datafiles.len(), 2);
        assert_eq!(meta.datafiles["img_full_202611230708_0.tar"], 39424);
        assert_eq!(meta.manifests.len(), 3);
        assert_eq!(meta.blobs.len(), 11);

        let raw = raw_single_quoted_manifests(&fs::read_to_string(&path).unwrap());
        assert_eq!(
            raw, meta.manifests,
            "parsed manifests differ from the file's bytes"
        );

        // Every blob the manifests reference was stored by this bundle, by an image key.
        let carried: Vec<_> = meta.blobs_carried().collect();
        assert_eq!(carried.len(), 11);
        assert!(meta.blobs_assumed().is_empty());
        let referenced = meta.referenced_blobs();
        assert_eq!(referenced.len(), 11);
        for hex in referenced.keys() {
            let owners = &meta.blobs[hex];
            assert!(
                owners
                    .iter()
                    .all(|o| o.starts_with("http://127.0.0.1:5103/team/app"))
            );
        }
        for (key, text) in &meta.manifests {
            let image: ImageManifest = serde_json::from_str(text).unwrap();
            assert!(meta.blobs.contains_key(image.config.digest.hex()), "{key}");
            assert_eq!(
                meta.manifest_media_type(key, text).unwrap(),
                registry::manifest::DOCKER_MANIFEST
            );
        }
    }

    #[test]
    fn reads_the_original_incremental_meta_and_its_base_markers() {
        let full = BundleMeta::read(&fixture_dir().join(FULL)).unwrap();
        let meta = BundleMeta::read(&fixture_dir().join(INCR)).unwrap();
        assert!(meta.is_original());
        assert_eq!(meta.manifests.len(), 5);
        let raw =
            raw_single_quoted_manifests(&fs::read_to_string(fixture_dir().join(INCR)).unwrap());
        assert_eq!(raw, meta.manifests);
        // The images shared with the full bundle have the very same manifest bytes.
        for (key, text) in &full.manifests {
            assert_eq!(
                Digest::of(meta.manifests[key].as_bytes()),
                Digest::of(text.as_bytes())
            );
        }

        let assumed = meta.blobs_assumed();
        let assumed_hex: BTreeSet<&str> = assumed.iter().map(|a| a.digest.hex()).collect();
        let full_hex: BTreeSet<&str> = full.blobs.keys().map(String::as_str).collect();
        assert_eq!(assumed_hex, full_hex, "every blob of the base is assumed");
        let referenced = meta.referenced_blobs();
        for blob in &assumed {
            assert_eq!(blob.bases, vec![FULL.to_string()]);
            // app0..app2 are in this bundle too, so every base blob has a known size.
            assert_eq!(blob.size, Some(referenced[blob.digest.hex()]));
        }

        let carried: Vec<_> = meta.blobs_carried().collect();
        assert_eq!(carried.len(), 6, "app3's and app4's own layers and configs");
        for blob in &carried {
            assert!(!full.blobs.contains_key(blob.digest.hex()));
            assert!(blob.entry.is_none());
        }
        // Every config and layer is either carried or assumed.
        for (key, text) in &meta.manifests {
            let image: ImageManifest = serde_json::from_str(text).unwrap();
            for blob in image.blobs() {
                let hex = blob.digest.hex();
                assert!(
                    carried.iter().any(|c| c.digest.hex() == hex) || assumed_hex.contains(hex),
                    "{key}: {hex}"
                );
            }
        }
    }

    #[test]
    fn fixture_metas_survive_our_writer() {
        let temp = tempfile::tempdir().unwrap();
        for name in [FULL, INCR] {
            let meta = BundleMeta::read(&fixture_dir().join(name)).unwrap();
            let path = temp.path().join(name);
            meta.write_atomically(&path).unwrap();
            let back = BundleMeta::read(&path).unwrap();
            assert_eq!(back, meta);
            assert!(
                back.is_original(),
                "no `format` is added to an original meta"
            );
            for (key, text) in &meta.manifests {
                assert_eq!(
                    Digest::of(back.manifests[key].as_bytes()),
                    Digest::of(text.as_bytes())
                );
            }
        }
    }

    #[test]
    fn reads_yaml_v2_literal_blocks_exactly() {
        // yaml.v2 picks `|-` (no final newline), `|` (one) or `|+` (several), and quoted
        // styles for the rest; a manifest's first line may start with spaces.
        let text = "datafiles:\n  a_0.tar: 3072\ncompressor: tar\nblobs: {}\nmanifests:\n  \
                    http://h/a:1: |-\n    {\n       \"schemaVersion\": 2,\n\n       \"x\": \"it's\"\n    }\n  \
                    http://h/a:2: |\n    {}\n  \
                    http://h/a:3: |+\n    {}\n\n\n  \
                    http://h/a:4: |2-\n      {\"indented\": true}\n    }\n  \
                    http://h/a:5: \"{\\\"a\\\":\\t1}\\r\\n\"\n\
                    blobdoing: {}\n";
        let meta = BundleMeta::parse(text, Path::new("x_meta.yaml")).unwrap();
        assert_eq!(
            meta.manifests["http://h/a:1"],
            "{\n   \"schemaVersion\": 2,\n\n   \"x\": \"it's\"\n}"
        );
        assert_eq!(meta.manifests["http://h/a:2"], "{}\n");
        assert_eq!(meta.manifests["http://h/a:3"], "{}\n\n\n");
        assert_eq!(meta.manifests["http://h/a:4"], "  {\"indented\": true}\n}");
        assert_eq!(meta.manifests["http://h/a:5"], "{\"a\":\t1}\r\n");
    }

    fn tricky_strings() -> Vec<String> {
        let pretty = "{\n   \"schemaVersion\": 2,\n   \"annotations\": {\"it's\": \"a 'quote'\", \
                      \"x\": \"a\\\"b\"}\n}";
        let mut strings = vec![
            pretty.to_string(),
            format!("{pretty}\n"),
            format!("{pretty}\n\n\n"),
            format!("\n{pretty}"),
            format!("   {pretty}"),
            format!("{pretty}   "),
            "{\"a\": 'b'}".to_string(),
            "'".to_string(),
            "''".to_string(),
            "\"".to_string(),
            "{\r\n  \"crlf\": true\r\n}\r\n".to_string(),
            "{\n\t\"tab\": 1,\n  \"trail\": 2   \n}".to_string(),
            "line with trailing spaces   \n  and leading\n".to_string(),
            "{\"unicode\": \"héllo ☃ 𝄞\", \"bom\": \"\u{feff}\", \"nel\": \"\u{85}\", \
             \"ls\": \"\u{2028}\"}"
                .to_string(),
            "# not a comment\n--- not a document\n... nor an end\n- not a list\nkey: value"
                .to_string(),
            "plain words that are long enough to be folded by a yaml writer at eighty \
             columns,  with  double  spaces and a trailing space "
                .to_string(),
            "a\\b\\\\c \\n not a newline".to_string(),
            "\u{0}\u{7}\u{1b} controls".to_string(),
            String::new(),
            " ".to_string(),
            "true".to_string(),
            "null".to_string(),
            "~".to_string(),
            "0x1F".to_string(),
            "1e5".to_string(),
            "@&*!|>%".to_string(),
        ];
        strings.push("x".repeat(100_000));
        strings
    }

    #[test]
    fn tricky_manifest_strings_round_trip_exactly() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("img_full_209901010000_meta.yaml");
        let mut meta = BundleMeta::new_ours();
        meta.datafiles
            .insert("img_full_209901010000_0.tar".into(), 1024);
        for (i, text) in tricky_strings().into_iter().enumerate() {
            meta.manifests
                .insert(format!("http://h:5000/r/img:{i}"), text.clone());
            meta.child_manifests
                .insert(Digest::of(text.as_bytes()).to_string(), text.clone());
            meta.media_types.insert(format!("k{i}"), text);
        }
        // Image keys that look like other YAML types stay strings.
        for key in [
            "true", "null", "~", "123", "1e5", "- x", "a: b", "#c", "'q'",
        ] {
            meta.manifests.insert(key.to_string(), "{}".to_string());
        }
        // Blob hexes that a YAML 1.1 reader could take for numbers.
        let numeric = "1".repeat(64);
        let float = format!("1e{}", "5".repeat(62));
        let zeros = "0".repeat(64);
        for hex in [&numeric, &float, &zeros] {
            meta.blobs
                .insert(hex.clone(), vec!["http://h:5000/r/img:1".into()]);
            meta.entries.insert(
                hex.clone(),
                EntryLocation {
                    file: "img_full_209901010000_0.tar".into(),
                    offset: 512,
                    size: 0,
                },
            );
        }
        meta.blobs.insert(
            hex('a'),
            vec![BundleMeta::base_marker("img_full_209801010000_meta.yaml")],
        );
        meta.base_blobs.insert(
            hex('a'),
            BaseBlob {
                size: Some(7),
                repositories: vec!["team/app0".into()],
            },
        );
        meta.bases.push(BaseRef {
            meta: "img_full_209801010000_meta.yaml".into(),
            format: None,
        });
        meta.datafile_sha256
            .insert("img_full_209901010000_0.tar".into(), hex('b'));

        meta.write_atomically(&path).unwrap();
        assert!(!PathBuf::from(format!("{}.partial", path.display())).exists());
        let back = BundleMeta::read(&path).unwrap();
        assert_eq!(back, meta);
        for (key, text) in &meta.manifests {
            assert_eq!(back.manifests[key].as_bytes(), text.as_bytes(), "{key}");
        }
        // Writing again over an existing file works and leaves no partial file behind.
        meta.write_atomically(&path).unwrap();
        let names: Vec<_> = fs::read_dir(temp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn our_meta_keeps_the_original_keys_first_and_readable() {
        let mut meta = BundleMeta::new_ours();
        meta.datafiles.insert("w_0.tar".into(), 2048);
        meta.manifests.insert(
            "http://10.45.80.1/public/alpine:3.11".into(),
            "{\n   \"schemaVersion\": 2\n}".into(),
        );
        let text = meta.to_yaml().unwrap();
        assert!(text.starts_with("datafiles:\n  w_0.tar: 2048\ncompressor: tar\nblobs: {}\n"));
        assert!(text.contains("blobdoing: {}\nformat: 1\n"), "{text}");
        // Multi-line manifests stay readable, as the original wrote them.
        assert!(text.contains("alpine:3.11\": |-\n"), "{text}");
        assert!(
            !text.contains("entries"),
            "empty additions are left out: {text}"
        );
    }

    #[test]
    fn classifies_carried_and_assumed_blobs_of_ours() {
        let mut meta = BundleMeta::new_ours();
        meta.datafiles.insert("w_0.tar".into(), 4096);
        let manifest = "{\"m\":1}".to_string();
        let manifest_hex = Digest::of(manifest.as_bytes()).hex().to_string();
        meta.manifests.insert("http://h/r:1".into(), manifest);
        let at = |offset| EntryLocation {
            file: "w_0.tar".into(),
            offset,
            size: 3,
        };
        meta.blobs.insert(hex('1'), vec!["http://h/r:1".into()]);
        meta.entries.insert(hex('1'), at(512));
        meta.entries.insert(hex('2'), at(1536)); // stored but missing from `blobs`
        meta.entries.insert(manifest_hex, at(2560)); // the stored manifest: not a blob
        meta.blobs
            .insert(hex('3'), vec![BundleMeta::base_marker("base_meta.yaml")]);
        meta.base_blobs.insert(
            hex('3'),
            BaseBlob {
                size: Some(9),
                repositories: vec!["team/app0".into()],
            },
        );
        meta.base_blobs.insert(hex('4'), BaseBlob::default());

        let carried: Vec<_> = meta.blobs_carried().collect();
        let carried_hex: Vec<&str> = carried.iter().map(|c| c.digest.hex()).collect();
        assert_eq!(carried_hex, vec![hex('1'), hex('2')]);
        assert_eq!(carried[0].entry, Some(&at(512)));
        assert_eq!(carried[0].owners, ["http://h/r:1".to_string()]);

        let assumed = meta.blobs_assumed();
        assert_eq!(assumed.len(), 2);
        assert_eq!(assumed[0].digest.hex(), hex('3'));
        assert_eq!(assumed[0].size, Some(9));
        assert_eq!(assumed[0].repositories, vec!["team/app0".to_string()]);
        assert_eq!(assumed[0].bases, vec!["base_meta.yaml".to_string()]);
        assert_eq!(assumed[1].size, None);
    }

    /// A fuzzing find: fuzz/seeds/bundle_meta/image_size_overflow.yaml reproduces it.
    #[test]
    fn image_size_of_absurd_blob_sizes_saturates() {
        let manifest = format!(
            r#"{{"config":{{"digest":"sha256:{}","size":{}}},"layers":[{{"digest":"sha256:{}","size":1}}]}}"#,
            hex('a'),
            u64::MAX,
            hex('b')
        );
        let text = format!(
            "datafiles: {{}}\ncompressor: tar\nblobs: {{}}\nmanifests:\n  http://h/r:1: '{manifest}'\nblobdoing: {{}}\n"
        );
        let meta = BundleMeta::parse(&text, Path::new("w_meta.yaml")).unwrap();
        assert_eq!(meta.image_size("http://h/r:1"), Some(u64::MAX));
    }

    #[test]
    fn parse_errors_name_the_file_and_position() {
        let err = BundleMeta::parse(
            "datafiles:\n  a: 1\nblobs: [\n",
            Path::new("/b/img_full_x_meta.yaml"),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/b/img_full_x_meta.yaml"), "{message}");
        assert!(
            matches!(err, MetaError::Parse { line: Some(_), .. }),
            "{err:?}"
        );
        assert!(message.contains("line "), "{message}");

        let err = BundleMeta::parse("datafiles:\n  a: many\n", Path::new("m.yaml")).unwrap_err();
        assert!(
            matches!(err, MetaError::Parse { line: Some(2), .. }),
            "{err:?}"
        );

        let missing = BundleMeta::read(Path::new("/nonexistent/dir/m_meta.yaml")).unwrap_err();
        assert!(matches!(missing, MetaError::Io { .. }));
        assert!(missing.to_string().contains("/nonexistent/dir/m_meta.yaml"));
    }

    #[test]
    fn refuses_newer_formats_bad_keys_and_escaping_data_files() {
        let path = Path::new("m.yaml");
        let err = BundleMeta::parse("format: 2\n", path).unwrap_err();
        assert!(matches!(err, MetaError::UnsupportedFormat { found: 2, .. }));

        for text in [
            "datafiles:\n  ../../etc/passwd: 1\n",
            "datafiles:\n  /etc/passwd: 1\n",
            "datafiles:\n  'c:\\x': 1\n",
            "blobs:\n  abc: [x]\n",
            "blobs:\n  ABCDEF: [x]\n",
            "child_manifests:\n  abc: '{}'\n",
            "entries:\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: \
             {file: nope.tar, offset: 0, size: 1}\n",
        ] {
            let err = BundleMeta::parse(text, path).unwrap_err();
            assert!(matches!(err, MetaError::Invalid { .. }), "{text}: {err:?}");
        }
        // Nulls and unknown keys are harmless.
        let meta = BundleMeta::parse(
            "datafiles:\nblobs:\nfuture_key: 3\ncompressor:\nmanifests:\n  a/b:1: '{}'\n",
            path,
        )
        .unwrap();
        assert!(meta.datafiles.is_empty() && meta.blobs.is_empty());
        assert_eq!(meta.compressor, Compressor::default());
        // A meta with no images is refused, whatever else it holds: there is nothing to deliver.
        for text in ["", "blobs: {}\nmanifests: {}\n", "datafiles:\n  a.tar: 3\n"] {
            let err = BundleMeta::parse(text, path).unwrap_err();
            assert!(
                err.to_string().contains("lists no images"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn compressors_parse_and_unsupported_ones_are_explained() {
        for (name, expected, supported) in [
            ("tar", Compressor::Tar, true),
            ("zstd", Compressor::Zstd, true),
            ("gzip", Compressor::Gzip, true),
            ("xz", Compressor::Xz, true),
            ("lz4", Compressor::Lz4, true),
            ("squashfs", Compressor::Squashfs, true),
            ("brotli", Compressor::Other("brotli".into()), false),
        ] {
            let text = format!("compressor: {name}\nmanifests:\n  a/b:1: '{{}}'\n");
            let meta = BundleMeta::parse(&text, Path::new("m")).unwrap();
            assert_eq!(meta.compressor, expected);
            assert_eq!(meta.compressor.is_supported(), supported);
            assert_eq!(meta.compressor.as_str(), name);
        }
        let err = Compressor::Other("brotli".into())
            .ensure_supported(Path::new("/d/img_full_x_meta.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("brotli") && err.contains("/d/img_full_x_meta.yaml"),
            "{err}"
        );
    }

    #[test]
    fn data_files_sit_next_to_the_meta() {
        let mut meta = BundleMeta::default();
        meta.datafiles.insert("w_1.tar".into(), 0);
        meta.datafiles.insert("w_0.tar".into(), 0);
        assert_eq!(
            meta.data_file_paths(Path::new("/d/x/w_meta.yaml")).unwrap(),
            vec![
                ("w_0.tar".to_string(), PathBuf::from("/d/x/w_0.tar")),
                ("w_1.tar".to_string(), PathBuf::from("/d/x/w_1.tar")),
            ]
        );
        assert_eq!(
            meta.data_file_paths(Path::new("w_meta.yaml")).unwrap()[0].1,
            PathBuf::from("./w_0.tar")
        );
        meta.datafiles.insert("../w.tar".into(), 0);
        assert!(meta.data_file_paths(Path::new("w_meta.yaml")).is_err());
    }

    #[test]
    fn base_markers_and_timestamps() {
        let marker = BundleMeta::base_marker("img_full_202611230708_meta.yaml");
        assert_eq!(
            marker,
            "https://last.img/skip/it:img_full_202611230708_meta.yaml"
        );
        assert_eq!(
            BundleMeta::base_of_marker(&marker),
            Some("img_full_202611230708_meta.yaml")
        );
        assert_eq!(BundleMeta::base_of_marker("http://h/r:1"), None);
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59Z"
        );
        let meta = BundleMeta::new_ours();
        assert_eq!(meta.format, Some(FORMAT_VERSION));
        assert!(!meta.is_original());
        assert!(meta.created.unwrap().ends_with('Z'));
    }
}
