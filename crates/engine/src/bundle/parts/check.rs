//! Checking a bundle's data files against its meta before anything is read: present,
//! regular files, the recorded sizes, and `entries` inside them. Separate because it reports
//! every problem at once, where indexing and reading stop at the first.

use std::fs;
use std::io;
use std::path::Path;

use super::PartError;
use crate::bundle::meta::{BundleMeta, Compressor, is_plain_file_name};

/// Checks every data file the meta lists: present, a regular file, exactly the recorded size
/// (as the original did before uploading), and every `entries` location inside its file.
/// Reports all problems, so a user fixing a copy sees the whole list at once.
pub fn check_parts(meta: &BundleMeta, dir: &Path) -> Result<(), Vec<PartError>> {
    let mut problems = Vec::new();
    for (name, &expected) in &meta.datafiles {
        if !is_plain_file_name(name) {
            problems.push(PartError::UnsafeName { file: name.clone() });
            continue;
        }
        let path = dir.join(name);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            problems.push(PartError::SymbolicLink { file: name.clone() });
            continue;
        }
        match fs::metadata(&path) {
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                problems.push(PartError::Missing {
                    file: name.clone(),
                    path,
                });
            }
            Err(source) => problems.push(PartError::Io {
                file: name.clone(),
                source,
            }),
            Ok(metadata) if !metadata.is_file() => {
                problems.push(PartError::NotAFile { file: name.clone() });
            }
            Ok(metadata) if metadata.len() != expected => {
                problems.push(PartError::SizeMismatch {
                    file: name.clone(),
                    expected,
                    actual: metadata.len(),
                });
            }
            Ok(_) => {}
        }
    }
    for (hex, location) in &meta.entries {
        let Some(&file_size) = meta.datafiles.get(&location.file) else {
            problems.push(PartError::UnknownDataFile {
                hex: hex.clone(),
                file: location.file.clone(),
            });
            continue;
        };
        // Offsets are in the uncompressed stream: only a plain tar part bounds them.
        let beyond = location
            .offset
            .checked_add(location.size)
            .is_none_or(|end| end > file_size);
        if meta.compressor == Compressor::Tar && beyond {
            problems.push(PartError::EntryOutOfRange {
                hex: hex.clone(),
                file: location.file.clone(),
                offset: location.offset,
                size: location.size,
                file_size,
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::parts::tests::write;
    use crate::bundle::parts::{EntryLocation, index_bundle};

    #[test]
    fn check_parts_reports_every_problem() {
        let temp = tempfile::tempdir().unwrap();
        write(temp.path(), "w_0.tar", &[0u8; 2048]);
        write(temp.path(), "w_1.tar", &[0u8; 1024]);
        fs::create_dir(temp.path().join("w_3.tar")).unwrap();
        let mut meta = BundleMeta::default();
        meta.datafiles.insert("w_0.tar".into(), 2048);
        meta.datafiles.insert("w_1.tar".into(), 3072);
        meta.datafiles.insert("w_2.tar".into(), 1024);
        meta.datafiles.insert("w_3.tar".into(), 1024);
        meta.datafiles.insert("../w_4.tar".into(), 1024);
        meta.entries.insert(
            "a".repeat(64),
            EntryLocation {
                file: "w_0.tar".into(),
                offset: 1536,
                size: 1000,
            },
        );
        meta.entries.insert(
            "b".repeat(64),
            EntryLocation {
                file: "w_9.tar".into(),
                offset: 0,
                size: 1,
            },
        );
        let problems = check_parts(&meta, temp.path()).unwrap_err();
        let summary: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 6, "{summary:#?}");
        assert!(problems.iter().any(|p| matches!(
            p,
            PartError::SizeMismatch { file, expected: 3072, actual: 1024 } if file == "w_1.tar"
        )));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, PartError::Missing { file, .. } if file == "w_2.tar"))
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, PartError::NotAFile { file } if file == "w_3.tar"))
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, PartError::UnsafeName { file } if file == "../w_4.tar"))
        );
        assert!(problems.iter().any(|p| matches!(
            p,
            PartError::EntryOutOfRange {
                file_size: 2048,
                ..
            }
        )));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, PartError::UnknownDataFile { file, .. } if file == "w_9.tar"))
        );
        assert!(
            summary
                .iter()
                .any(|s| s.contains("3072") && s.contains("1024"))
        );

        // index_bundle checks sizes before anything else.
        meta.entries.clear();
        meta.datafiles.retain(|name, _| name == "w_1.tar");
        assert!(matches!(
            index_bundle(&meta, temp.path()),
            Err(PartError::SizeMismatch { .. })
        ));
    }
}
