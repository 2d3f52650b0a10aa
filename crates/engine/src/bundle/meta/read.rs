//! Reading a meta file: its size limit and the parser's budget (a meta is untrusted input),
//! then the validation serde cannot do. Separate so that what is refused, and why, is in one
//! place; everything else may rely on a meta that passed [`BundleMeta::validate`].

use std::fs;
use std::path::Path;

use registry::Digest;

use super::{BundleMeta, FORMAT_VERSION, MetaError};

/// A 64-character lowercase hex string, as the original names blobs (`digest.Hex()`).
pub fn is_blob_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a data file name from a meta is a plain file name in the meta's directory. The
/// meta is untrusted input: `../../home/me/.ssh/id_rsa` must not be read and uploaded.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', ':', '\0'])
}

/// The largest meta file read. A meta of 10,000 images with 30,000 blobs is ~20 MiB; the
/// parsed meta takes a few times its text, so this bounds what a hostile one can cost.
pub const MAX_META_BYTES: u64 = 64 << 20;

/// Parse options: the library's defaults guard against hostile documents sized for config
/// files; a meta of thousands of images has hundreds of thousands of nodes and tens of MiB of
/// manifests, so the size limits are raised, to a few times that (alias limits stay, they stop
/// "billion laughs"). A million nodes are ~300,000 blobs with their owners: a meta past that is
/// refused while it is read, before it is all in memory.
pub(super) fn parse_options() -> serde_saphyr::Options {
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
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use registry::manifest::ImageManifest;

    use super::*;
    use crate::bundle::fixtures::{FULL, INCR, fixture_dir};
    use crate::bundle::meta::Compressor;

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
}
