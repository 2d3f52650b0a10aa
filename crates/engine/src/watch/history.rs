//! The watch history, `data/history.yaml` in the original's format: a map from the source
//! image (`host/repository:tag`) to when it was copied (`YYYYMMDDHHMMSS`). A restarted daemon
//! reads it and does not copy those tags again. It is rewritten whole, through a temporary
//! file and a rename, so a crash mid-write leaves the previous history, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    entries: BTreeMap<String, String>,
}

impl History {
    /// Reads the history at `path`; a missing file is an empty history.
    pub fn load(path: &Path) -> Result<History> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => BTreeMap::new(),
            Ok(text) => serde_saphyr::from_str::<Option<BTreeMap<String, String>>>(&text)
                .map_err(|error| {
                    Error::io(
                        path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()),
                    )
                })?
                .unwrap_or_default(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(Error::io(path, error)),
        };
        Ok(History {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a copy made at `when` (`YYYYMMDDHHMMSS`); [`save`](Self::save) writes it.
    pub fn record(&mut self, key: &str, when: &str) {
        self.entries.insert(key.to_string(), when.to_string());
    }

    pub fn save(&self) -> Result<()> {
        if let Some(directory) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|e| Error::io(directory, e))?;
        }
        let text = serde_saphyr::to_string(&self.entries).map_err(|error| {
            Error::io(
                &self.path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()),
            )
        })?;
        let temporary = self.path.with_extension("yaml.partial");
        std::fs::write(&temporary, text).map_err(|e| Error::io(&temporary, e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("history.yaml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "10.45.80.1/xxxx/app:v1: \"20210819100000\"\n10.45.80.1/xxxx/app:v2: \"20210820100000\"\n",
        )
        .unwrap();
        let mut history = History::load(&path).unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.contains("10.45.80.1/xxxx/app:v1"));
        history.record("127.0.0.1:5000/team/app:v3", "20261127120000");
        history.save().unwrap();
        let again = History::load(&path).unwrap();
        assert!(again.contains("127.0.0.1:5000/team/app:v3"));
        assert!(again.contains("10.45.80.1/xxxx/app:v2"));
        assert!(!path.with_extension("yaml.partial").exists());
    }

    #[test]
    fn no_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::load(&dir.path().join("history.yaml")).unwrap();
        assert!(history.is_empty());
    }
}
