//! The `zstd` compressor: one zstd stream over a whole data file. Parts are written as plain tar
//! first (so a failed entry can still be cut out) and compressed when closed; readers unpack
//! them once into a scratch directory, where entries are found by offset as in a tar bundle.
//! Layers are usually gzip'd already, so this pays off mostly for uncompressed layers and
//! configs; it exists because sites ask for it and the original offered it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use registry::{Digest, DigestHasher};

use crate::bundle::meta::BundleMeta;
use crate::bundle::parts::PartError;
use crate::error::{Error, Result};

/// zstd's default level: fast, and layers are mostly compressed already.
const LEVEL: i32 = 3;

/// Counts and hashes what passes to the file, so the compressed part's size and sha256 are
/// known without reading it back.
struct Hashing<W> {
    inner: W,
    hasher: DigestHasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Compresses `plain` into `compressed` and removes `plain`. Returns the compressed size and
/// sha256.
pub(crate) fn compress_part(plain: &Path, compressed: &Path) -> Result<(u64, Digest)> {
    let mut input = BufReader::new(File::open(plain).map_err(|e| Error::io(plain, e))?);
    let output = File::options()
        .write(true)
        .create_new(true)
        .open(compressed)
        .map_err(|e| Error::io(compressed, e))?;
    let hashing = Hashing {
        inner: BufWriter::new(output),
        hasher: DigestHasher::new(),
    };
    let mut encoder = zstd::Encoder::new(hashing, LEVEL).map_err(|e| Error::io(compressed, e))?;
    std::io::copy(&mut input, &mut encoder).map_err(|e| Error::io(compressed, e))?;
    let mut hashing = encoder.finish().map_err(|e| Error::io(compressed, e))?;
    hashing.flush().map_err(|e| Error::io(compressed, e))?;
    let file = hashing
        .inner
        .into_inner()
        .map_err(|e| Error::io(compressed, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(compressed, e))?;
    std::fs::remove_file(plain).map_err(|e| Error::io(plain, e))?;
    let size = hashing.hasher.len();
    Ok((size, hashing.hasher.finish()))
}

/// A scratch directory removed when dropped.
#[derive(Debug)]
pub struct Unpacked {
    pub directory: PathBuf,
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A new, empty scratch directory under the system's temporary directory.
pub(crate) fn scratch_directory() -> Result<Unpacked> {
    let scratch = std::env::temp_dir().join(format!(
        "image-transmit-unpacked-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    Ok(Unpacked { directory: scratch })
}

/// Decompresses every part of a zstd bundle into a scratch directory, under the same file
/// names, and returns a meta describing the unpacked copy (plain sizes, no checksums: those
/// were checked on the compressed files).
pub fn unpack(meta: &BundleMeta, directory: &Path) -> Result<(BundleMeta, Unpacked)> {
    let unpacked = scratch_directory()?;
    let scratch = unpacked.directory.clone();
    let mut plain_meta = meta.clone();
    plain_meta.datafile_sha256.clear();
    for name in meta.datafiles.keys() {
        let source = directory.join(name);
        let target = scratch.join(name);
        let input = File::open(&source).map_err(|e| Error::io(&source, e))?;
        let mut decoder = zstd::Decoder::new(input).map_err(|e| Error::io(&source, e))?;
        let mut output = BufWriter::new(File::create(&target).map_err(|e| Error::io(&target, e))?);
        // A stream that does not decode is a damaged data file, not a failure of the reader.
        let size = std::io::copy(&mut decoder, &mut output).map_err(|e| {
            Error::Part(PartError::Corrupt {
                file: name.clone(),
                detail: format!("zstd stream: {e}"),
            })
        })?;
        output.flush().map_err(|e| Error::io(&target, e))?;
        plain_meta.datafiles.insert(name.clone(), size);
    }
    Ok((plain_meta, unpacked))
}
