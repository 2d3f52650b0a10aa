//! [`MetaError`]: what can be wrong with a meta file, each variant naming the file. Separate
//! because reading, validation and writing all report through it.

use std::io;
use std::path::PathBuf;

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
    ///
    /// [`MAX_META_BYTES`]: super::MAX_META_BYTES
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
