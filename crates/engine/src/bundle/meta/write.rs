//! Writing a meta file: YAML that is checked to read back identically (a manifest's bytes
//! are its digest), written to a partial file and renamed into place. Separate from reading
//! because a writer's concerns (round trip, atomic replace, durability) are its own.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::read::parse_options;
use super::{BundleMeta, FORMAT_VERSION, MetaError};

impl BundleMeta {
    /// An empty meta of our format, stamped with the current time.
    pub fn new_ours() -> BundleMeta {
        BundleMeta {
            format: Some(FORMAT_VERSION),
            created: Some(rfc3339_utc(SystemTime::now())),
            ..BundleMeta::default()
        }
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
        if let Ok(dir) = fs::File::open(super::bundle_dir(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
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
    use std::time::Duration;

    use registry::Digest;

    use super::*;
    use crate::bundle::fixtures::{FULL, INCR, fixture_dir};
    use crate::bundle::meta::tests::hex;
    use crate::bundle::meta::{BaseBlob, BaseRef, EntryLocation};

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
