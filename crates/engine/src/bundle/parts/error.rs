//! [`PartError`]: what can be wrong with a data file, each variant naming the file. Separate
//! because every part of this module reports through it, and callers branch on it.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("data file {file} is missing (expected at {})", path.display())]
    Missing { file: String, path: PathBuf },

    #[error(
        "data file {file} has {actual} bytes but the meta file records {expected}: it is \
         incomplete or was changed after saving"
    )]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },

    #[error("data file {file} is not a regular file")]
    NotAFile { file: String },

    /// A link could point anywhere on the machine that reads the bundle: data files must be
    /// the files themselves.
    #[error(
        "data file {file} is a symbolic link; a bundle's data files must be the files themselves"
    )]
    SymbolicLink { file: String },

    #[error(
        "the meta file names data file {file:?}, which is not a plain file name in the meta's \
         directory; the bundle is damaged or hostile"
    )]
    UnsafeName { file: String },

    #[error(
        "data file {file} contains entry {name:?}, which {reason}; such an entry is never \
         written by image-transmit, so the bundle is damaged or hostile and is refused"
    )]
    UnsafeEntry {
        file: String,
        name: String,
        reason: &'static str,
    },

    #[error("data file {file} is truncated: {detail}")]
    Truncated { file: String, detail: String },

    #[error("data file {file} is not a valid tar stream: {detail}")]
    Corrupt { file: String, detail: String },

    #[error(
        "data file {file} is {compression}-compressed; it has to be decompressed to be indexed"
    )]
    Compressed {
        file: String,
        compression: &'static str,
    },

    #[error("the meta file places {hex} in data file {file:?}, which it does not list")]
    UnknownDataFile { hex: String, file: String },

    #[error(
        "the meta file places {hex} at bytes {offset}..{offset}+{size} of data file {file}, \
         which has only {file_size} bytes"
    )]
    EntryOutOfRange {
        hex: String,
        file: String,
        offset: u64,
        size: u64,
        file_size: u64,
    },

    #[error("cannot read data file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
}

impl PartError {
    /// The data file the problem is in.
    pub fn file(&self) -> &str {
        match self {
            PartError::Missing { file, .. }
            | PartError::SizeMismatch { file, .. }
            | PartError::NotAFile { file }
            | PartError::SymbolicLink { file }
            | PartError::UnsafeName { file }
            | PartError::UnsafeEntry { file, .. }
            | PartError::Truncated { file, .. }
            | PartError::Corrupt { file, .. }
            | PartError::Compressed { file, .. }
            | PartError::UnknownDataFile { file, .. }
            | PartError::EntryOutOfRange { file, .. }
            | PartError::Io { file, .. } => file,
        }
    }
}
