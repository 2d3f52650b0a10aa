//! Whole-stream compressors. This tool writes `zstd`: one zstd stream over a whole data file. Parts are written as plain tar
//! first (so a failed entry can still be cut out) and compressed when closed; readers unpack
//! them once into a scratch directory, where entries are found by offset as in a tar bundle.
//! Layers are usually gzip'd already, so this pays off mostly for uncompressed layers and
//! configs; it exists because sites ask for it and the original offered it. It reads what the
//! original's GUI also wrote: one gzip, xz or lz4 stream over a whole data file.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use registry::{Digest, DigestHasher};

use crate::bundle::meta::{BundleMeta, Compressor};
use crate::bundle::parts::{PartError, detect_compression};
use crate::error::{Error, Result};

/// zstd's default level: fast, and layers are mostly compressed already.
const LEVEL: i32 = 3;

/// Counts and hashes what passes to the file, so the compressed part's size and sha256 are
/// known without reading it back.
pub(crate) struct Hashing<W> {
    pub(crate) inner: W,
    pub(crate) hasher: DigestHasher,
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

/// Whether the bundle's data files must be decompressed before their tar entries can be read:
/// its meta names a compressor, or a file is compressed whatever the meta says (the original's
/// command line wrote plain tar under `compressor: gzip`; a file re-compressed by hand keeps
/// `tar`). The bytes decide, as in [`unpack`].
pub fn needs_unpacking(meta: &BundleMeta, directory: &Path) -> bool {
    meta.compressor != Compressor::Tar
        || meta.datafiles.keys().any(|name| {
            detect_compression(&directory.join(name)).is_ok_and(|compression| compression.is_some())
        })
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

/// Decompresses every part of a bundle into a scratch directory, under the same file names,
/// and returns a meta describing the unpacked copy (plain sizes, no checksums: those were
/// checked on the files as stored). Each file is decoded by what it starts with, not by the
/// meta's `compressor`: one whole zstd, gzip, xz or lz4 stream (as the original's GUI wrote
/// them), or plain tar, which is linked or copied as it is.
pub fn unpack(meta: &BundleMeta, directory: &Path) -> Result<(BundleMeta, Unpacked)> {
    let unpacked = scratch_directory()?;
    let scratch = unpacked.directory.clone();
    let mut plain_meta = meta.clone();
    plain_meta.datafile_sha256.clear();
    plain_meta.compressor = Compressor::Tar;
    for name in meta.datafiles.keys() {
        let source = directory.join(name);
        let target = scratch.join(name);
        let compression = detect_compression(&source).map_err(|e| Error::io(&source, e))?;
        let size = match compression {
            None => link_or_copy(&source, &target)?,
            Some(compression) => decompress(&source, &target, name, compression)?,
        };
        plain_meta.datafiles.insert(name.clone(), size);
    }
    Ok((plain_meta, unpacked))
}

/// A plain part in a bundle whose other parts are compressed: a hard link costs nothing; a copy
/// where links are impossible (another file system).
fn link_or_copy(source: &Path, target: &Path) -> Result<u64> {
    if std::fs::hard_link(source, target).is_ok() {
        return std::fs::metadata(target)
            .map(|metadata| metadata.len())
            .map_err(|e| Error::io(target, e));
    }
    std::fs::copy(source, target).map_err(|e| Error::io(target, e))
}

fn decompress(source: &Path, target: &Path, name: &str, compression: &str) -> Result<u64> {
    let input = BufReader::new(File::open(source).map_err(|e| Error::io(source, e))?);
    let mut output = BufWriter::new(File::create(target).map_err(|e| Error::io(target, e))?);
    // A stream that does not decode is a damaged data file, not a failure of the reader.
    let corrupt = |detail: String| {
        Error::Part(PartError::Corrupt {
            file: name.to_string(),
            detail: format!("{compression} stream: {detail}"),
        })
    };
    let size = match compression {
        "zstd" => {
            let mut decoder =
                zstd::Decoder::with_buffer(input).map_err(|e| Error::io(source, e))?;
            std::io::copy(&mut decoder, &mut output).map_err(|e| corrupt(e.to_string()))?
        }
        // Several gzip members one after another are one stream to gzip(1), and to Go.
        "gzip" => std::io::copy(
            &mut flate2::bufread::MultiGzDecoder::new(input),
            &mut output,
        )
        .map_err(|e| corrupt(e.to_string()))?,
        "lz4" => std::io::copy(&mut lz4_flex::frame::FrameDecoder::new(input), &mut output)
            .map_err(|e| corrupt(e.to_string()))?,
        "xz" => {
            // lzma-rs does not say how much it wrote.
            let mut counting = Hashing {
                inner: &mut output,
                hasher: DigestHasher::new(),
            };
            let mut input = input;
            lzma_rs::xz_decompress(&mut input, &mut counting)
                .map_err(|e| corrupt(e.to_string()))?;
            counting.hasher.len()
        }
        other => {
            return Err(Error::Part(PartError::Compressed {
                file: name.to_string(),
                compression: other_compression(other),
            }));
        }
    };
    output.flush().map_err(|e| Error::io(target, e))?;
    Ok(size)
}

/// The `'static` name [`PartError::Compressed`] carries, for a format read elsewhere or not at all.
fn other_compression(name: &str) -> &'static str {
    if name == "squashfs" {
        "squashfs"
    } else {
        "unknown"
    }
}
