//! The bundle meta file (`<work name>_meta.yaml`): what a bundle holds and where.
//!
//! It exists because a bundle's data files are plain tar streams of blobs with no manifests in
//! the original's format; the meta file carries the manifests (byte-exact, their sha256 is the
//! image digest on the target), the list of data files with their sizes, and who stored which
//! blob. We write a **superset** of the original tool's schema (`docs/bundle-format.md`): every key
//! the original reads has the meaning it gives it, so the original can still upload a tar bundle
//! of single-platform images that we wrote; our additions (`format`, `entries`, `base_blobs`, …)
//! are keys the original's yaml.v2 decoder silently ignores. `docs/bundle-format.md` is the
//! specification; this module is its reader and writer.
//!
//! The module is split by concern: this file is the schema (the types as serde reads and
//! writes them), `compressor` the `compressor` key, `read` reading with its size limits and
//! validation, `write` the round-tripped YAML and the atomic write, `contents` what a valid
//! meta says about its blobs and images, and `error` what goes wrong.

mod compressor;
mod contents;
mod error;
mod read;
mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use compressor::Compressor;
pub use contents::{AssumedBlob, CarriedBlob, bundle_dir};
pub use error::MetaError;
pub use read::{MAX_META_BYTES, is_blob_hex, is_plain_file_name};
pub use write::rfc3339_utc;

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

/// yaml.v2 writes a nil map as `{}`, but a hand-edited file may say `blobs:` (null); treat
/// null like empty instead of failing on a harmless file.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    pub(super) fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }
}
