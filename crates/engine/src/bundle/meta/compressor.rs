//! The `compressor` key: what the original wrote there, and which of those we read.
//! Separate because it is a small vocabulary of its own, with its own refusal message.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MetaError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::meta::BundleMeta;

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
}
