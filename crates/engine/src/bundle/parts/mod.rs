//! A bundle's data files ("parts"): finding every entry once, and reading one safely.
//!
//! The original tool re-opened and re-scanned every data file for every blob it uploaded
//! (quadratic, and with compressed parts a full decompression each time), treated any read
//! error as "end of archive" (so corruption looked like "blob not found"), and accepted
//! whatever entries it met. Here a part is indexed once, by walking its tar headers and
//! seeking over the data; the index maps blob hex → where the bytes are, and reading an entry
//! is a seek plus a bounded read. Our own bundles record those locations in the meta
//! (`entries`), so they need no scan at all.
//!
//! Parts are untrusted input. We never unpack them to disk, but an entry that is a link, a
//! device, a directory, or has an absolute or `..` name cannot have been written by either
//! tool: the bundle is damaged or hostile, and it is refused with the entry named. A part that
//! ends early is reported as truncated, not silently shortened.

//! The module is split by concern: `names` is how entries are named, `index_tar` and
//! `index_archive` find the entries of a tar part (with the tar crate, and with our own header
//! reader for the fork's archives), `unsafe_entries` is what both refuse, `check` compares the
//! parts with the meta, and `read` opens one entry; this file holds the index they build.

mod check;
mod error;
mod index_archive;
mod index_tar;
mod names;
mod read;
mod unsafe_entries;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::meta::BundleMeta;

pub use check::check_parts;
pub use error::PartError;
pub use index_archive::index_archive_part;
pub use index_tar::{detect_compression, index_part, index_reader};
pub use names::{MANIFEST_ENTRY_SUFFIX, entry_hex, entry_name, manifest_entry_name};
pub use read::open_entry;

/// Where an entry's bytes are: `size` bytes from `offset` (the start of the entry's data, not
/// its header) in the **uncompressed** tar stream of data file `file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryLocation {
    pub file: String,
    pub offset: u64,
    pub size: u64,
}

/// What an indexed entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A config or layer, named `<hex><suffix>` (or `<hex>/layer.<suffix>` in the original's
    /// docker-loadable single file).
    Blob,
    /// A manifest, named `<hex>.manifest.json` (ours only).
    Manifest,
}

#[derive(Debug, Clone)]
struct Indexed {
    kind: EntryKind,
    /// Every entry found with this hex, in scan order. The first is the one used, as in the
    /// original; the rest are kept because an original part can hold a corrupt first copy (a
    /// download that failed mid-stream, then retried): upload verifies digests and may try the
    /// next one.
    locations: Vec<EntryLocation>,
}

/// Blob and manifest hex → location, for one bundle.
#[derive(Debug, Clone, Default)]
pub struct PartIndex {
    entries: HashMap<String, Indexed>,
}

impl PartIndex {
    /// The first entry with this hex, blob or manifest.
    pub fn get(&self, hex: &str) -> Option<&EntryLocation> {
        self.candidates(hex).first()
    }

    /// Every entry with this hex, first (preferred) first.
    pub fn candidates(&self, hex: &str) -> &[EntryLocation] {
        self.entries
            .get(hex)
            .map(|indexed| indexed.locations.as_slice())
            .unwrap_or_default()
    }

    /// The first entry with this hex if it holds a blob.
    pub fn blob(&self, hex: &str) -> Option<&EntryLocation> {
        self.of_kind(hex, EntryKind::Blob)
    }

    /// The first entry with this hex if it holds a manifest.
    pub fn manifest(&self, hex: &str) -> Option<&EntryLocation> {
        self.of_kind(hex, EntryKind::Manifest)
    }

    fn of_kind(&self, hex: &str, kind: EntryKind) -> Option<&EntryLocation> {
        self.entries
            .get(hex)
            .filter(|indexed| indexed.kind == kind)
            .and_then(|indexed| indexed.locations.first())
    }

    pub fn kind(&self, hex: &str) -> Option<EntryKind> {
        self.entries.get(hex).map(|indexed| indexed.kind)
    }

    /// Every distinct hex with its kind and first location, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, EntryKind, &EntryLocation)> {
        self.entries.iter().filter_map(|(hex, indexed)| {
            Some((hex.as_str(), indexed.kind, indexed.locations.first()?))
        })
    }

    /// Distinct hexes indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a location; an earlier one for the same hex stays first.
    pub fn insert(&mut self, hex: &str, kind: EntryKind, location: EntryLocation) {
        self.entries
            .entry(hex.to_string())
            .or_insert_with(|| Indexed {
                kind,
                locations: Vec::new(),
            })
            .locations
            .push(location);
    }
}

/// Builds the index of a bundle whose meta is `meta` and whose parts are in `dir`.
///
/// Parts are checked first ([`check_parts`]; the first problem is returned). A meta with
/// `entries` (ours) is used as is: hexes of manifests the meta holds are manifest entries,
/// the rest blobs. Otherwise (the original's) every part is scanned once, in the meta's
/// (sorted) order, and entry names are mapped to hexes by [`entry_hex`]; the first entry of a
/// hex wins, as in the original. Such parts must be plain tar, whatever `compressor` says
/// (the original CLI wrote plain tar under any name); a really compressed part gives
/// [`PartError::Compressed`], and the caller can decompress it through [`index_reader`].
pub fn index_bundle(meta: &BundleMeta, dir: &Path) -> Result<PartIndex, PartError> {
    if let Err(mut problems) = check_parts(meta, dir) {
        return Err(problems.swap_remove(0));
    }
    let mut index = PartIndex::default();
    if !meta.entries.is_empty() {
        let manifests: BTreeSet<String> = meta.manifest_hexes();
        for (hex, location) in &meta.entries {
            let kind = if manifests.contains(hex) {
                EntryKind::Manifest
            } else {
                EntryKind::Blob
            };
            index.insert(hex, kind, location.clone());
        }
        return Ok(index);
    }
    for name in meta.datafiles.keys() {
        for (entry, location) in index_part(&dir.join(name), name)? {
            if let Some((hex, kind)) = entry_hex(&entry) {
                index.insert(hex, kind, location);
            }
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::path::PathBuf;

    use super::*;
    use registry::manifest::ImageManifest;
    use registry::{Digest, DigestHasher};

    use crate::bundle::fixtures::{FULL, INCR, fixture_dir};

    use super::index_tar::padded;

    fn sha256_of_entry(dir: &Path, location: &EntryLocation) -> Digest {
        let mut reader = open_entry(dir, location).unwrap();
        let mut hasher = DigestHasher::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        assert_eq!(hasher.len(), location.size);
        hasher.finish()
    }

    #[test]
    fn indexes_the_original_full_bundle() {
        let dir = fixture_dir();
        let meta = BundleMeta::read(&dir.join(FULL)).unwrap();
        check_parts(&meta, &dir).unwrap();
        let index = index_bundle(&meta, &dir).unwrap();
        let referenced = meta.referenced_blobs();
        assert_eq!(index.len(), referenced.len());
        for (hex, size) in &referenced {
            let location = index.blob(hex).unwrap_or_else(|| panic!("{hex} not found"));
            assert_eq!(location.size, *size, "{hex}");
            assert_eq!(sha256_of_entry(&dir, location).hex(), hex);
        }
        // The original's entry names follow the suffix rule we reproduce.
        let mut media_types = HashMap::new();
        for text in meta.manifests.values() {
            let image: ImageManifest = serde_json::from_str(text).unwrap();
            for blob in image.blobs() {
                media_types.insert(blob.digest.hex().to_string(), blob.media_type.clone());
            }
        }
        for name in meta.datafiles.keys() {
            for (entry, location) in index_part(&dir.join(name), name).unwrap() {
                let (hex, kind) = entry_hex(&entry).unwrap();
                assert_eq!(kind, EntryKind::Blob);
                assert_eq!(entry, entry_name(hex, &media_types[hex], location.size));
            }
        }
    }

    #[test]
    fn indexes_the_original_incremental_bundle() {
        let dir = fixture_dir();
        let meta = BundleMeta::read(&dir.join(INCR)).unwrap();
        let index = index_bundle(&meta, &dir).unwrap();
        let carried: Vec<_> = meta.blobs_carried().collect();
        assert_eq!(index.len(), carried.len());
        let referenced = meta.referenced_blobs();
        for blob in &carried {
            let hex = blob.digest.hex();
            let location = index.get(hex).unwrap();
            assert_eq!(location.size, referenced[hex]);
            assert_eq!(sha256_of_entry(&dir, location), blob.digest);
        }
        for blob in meta.blobs_assumed() {
            assert!(index.get(blob.digest.hex()).is_none());
        }
    }

    // ---- hand-made tar streams ----

    pub(super) fn header(name: &[u8], typeflag: u8, mode: u32, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.as_old_mut().linkflag = [typeflag];
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    pub(super) fn symlink(name: &[u8], target: &[u8]) -> Vec<u8> {
        let mut link = header(name, b'2', 0o777, 0);
        link[157..157 + target.len()].copy_from_slice(target);
        let mut with_sum = tar::Header::new_old();
        with_sum.as_mut_bytes().copy_from_slice(&link);
        with_sum.set_cksum();
        with_sum.as_bytes().to_vec()
    }

    pub(super) fn entry(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut bytes = header(name, typeflag, 0o644, data.len() as u64);
        bytes.extend_from_slice(data);
        bytes.resize(
            bytes.len() + (padded(data.len() as u64) as usize - data.len()),
            0,
        );
        bytes
    }

    pub(super) fn finish(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.extend_from_slice(&[0u8; 1024]);
        bytes
    }

    pub(super) fn hex_of(data: &[u8]) -> String {
        Digest::of(data).hex().to_string()
    }

    pub(super) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn uses_our_entry_table_without_scanning() {
        let temp = tempfile::tempdir().unwrap();
        let blob = b"blob".to_vec();
        let manifest = "{\"schemaVersion\":2}".to_string();
        let mut bytes = entry(
            entry_name(&hex_of(&blob), "x.tar", 4).as_bytes(),
            b'0',
            &blob,
        );
        bytes.extend(entry(
            manifest_entry_name(&hex_of(manifest.as_bytes())).as_bytes(),
            b'0',
            manifest.as_bytes(),
        ));
        let bytes = finish(bytes);
        write(temp.path(), "o_0.tar", &bytes);

        let mut meta = BundleMeta::new_ours();
        meta.datafiles.insert("o_0.tar".into(), bytes.len() as u64);
        meta.manifests
            .insert("http://h/r:1".into(), manifest.clone());
        let blob_at = EntryLocation {
            file: "o_0.tar".into(),
            offset: 512,
            size: 4,
        };
        let manifest_at = EntryLocation {
            file: "o_0.tar".into(),
            offset: 1536,
            size: manifest.len() as u64,
        };
        meta.entries.insert(hex_of(&blob), blob_at.clone());
        meta.entries
            .insert(hex_of(manifest.as_bytes()), manifest_at.clone());
        let index = index_bundle(&meta, temp.path()).unwrap();
        assert_eq!(index.blob(&hex_of(&blob)), Some(&blob_at));
        assert_eq!(
            index.manifest(&hex_of(manifest.as_bytes())),
            Some(&manifest_at)
        );
        assert_eq!(index.blob(&hex_of(manifest.as_bytes())), None);
        assert_eq!(sha256_of_entry(temp.path(), &blob_at).hex(), hex_of(&blob));

        // Scanning the same part finds the same places.
        let mut scanned = meta.clone();
        scanned.entries.clear();
        let by_scan = index_bundle(&scanned, temp.path()).unwrap();
        assert_eq!(by_scan.get(&hex_of(&blob)), Some(&blob_at));
        assert_eq!(
            by_scan.manifest(&hex_of(manifest.as_bytes())),
            Some(&manifest_at)
        );

        // The table is trusted for places, not for bounds.
        meta.entries.insert(
            hex_of(b"other"),
            EntryLocation {
                file: "o_0.tar".into(),
                offset: bytes.len() as u64,
                size: 1,
            },
        );
        assert!(matches!(
            index_bundle(&meta, temp.path()),
            Err(PartError::EntryOutOfRange { .. })
        ));
    }

    #[test]
    fn first_entry_wins_and_later_copies_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        let hex = "c".repeat(64);
        let mut bytes = entry(format!("{hex}.tar.gz").as_bytes(), b'0', b"bad!");
        bytes.extend(entry(format!("{hex}.tar.gz").as_bytes(), b'0', b"good"));
        let bytes = finish(bytes);
        write(temp.path(), "d_0.tar", &bytes);
        let mut meta = BundleMeta::default();
        meta.datafiles.insert("d_0.tar".into(), bytes.len() as u64);
        let index = index_bundle(&meta, temp.path()).unwrap();
        assert_eq!(index.get(&hex).unwrap().offset, 512);
        assert_eq!(
            index
                .candidates(&hex)
                .iter()
                .map(|l| l.offset)
                .collect::<Vec<_>>(),
            vec![512, 1536]
        );
        assert!(index.candidates(&"d".repeat(64)).is_empty());
    }
}
