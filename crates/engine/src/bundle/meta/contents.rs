//! What a valid meta says: which blobs the bundle carries and which it leaves to its bases,
//! the sizes and media types of its images, where its data files are. Separate from reading
//! and writing: these are the questions upload, verify, load and the web UI ask of a meta.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use registry::Digest;
use registry::manifest::{ImageManifest, IndexManifest};

use super::{BASE_MARKER_PREFIX, BundleMeta, EntryLocation, MetaError, is_plain_file_name};

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

/// The directory a meta file's data files are in: the meta's own.
pub fn bundle_dir(meta_path: &Path) -> PathBuf {
    match meta_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl BundleMeta {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::meta::BaseBlob;
    use crate::bundle::meta::tests::hex;

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
}
