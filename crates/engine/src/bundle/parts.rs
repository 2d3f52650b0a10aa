//! A bundle's data files ("parts"): finding every entry once, and reading one safely.
//!
//! The original tool re-opened and re-scanned every data file for every blob it uploaded
//! (quadratic, and with compressed parts a full decompression each time), treated any read
//! error as "end of archive" (so corruption looked like "blob not found"), and accepted
//! whatever entries it met. Here a part is indexed once, by walking its tar headers and
//! seeking over the data; the index maps blob hex → where the bytes are, and reading an entry
//! is a seek plus a bounded read. Our own bundles record those locations in the meta
//! (`entries`), so they need no scan at all.
//!
//! Parts are untrusted input. We never unpack them to disk, but an entry that is a link, a
//! device, a directory, or has an absolute or `..` name cannot have been written by either
//! tool: the bundle is damaged or hostile, and it is refused with the entry named. A part that
//! ends early is reported as truncated, not silently shortened.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::meta::{BundleMeta, Compressor, is_blob_hex, is_plain_file_name};

/// Suffix of a manifest stored as a data entry: `<hex>.manifest.json`. The original stored no
/// manifests in data files; ours does, so that the parts alone still describe their images.
/// The original's upload matches entries by hex prefix and never asks for a manifest's hex,
/// so these entries are invisible to it.
pub const MANIFEST_ENTRY_SUFFIX: &str = ".manifest.json";

const BLOCK: u64 = 512;

/// Where an entry's bytes are: `size` bytes from `offset` (the start of the entry's data, not
/// its header) in the **uncompressed** tar stream of data file `file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryLocation {
    pub file: String,
    pub offset: u64,
    pub size: u64,
}

/// What an indexed entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A config or layer, named `<hex><suffix>` (or `<hex>/layer.<suffix>` in the original's
    /// docker-loadable single file).
    Blob,
    /// A manifest, named `<hex>.manifest.json` (ours only).
    Manifest,
}

#[derive(Debug, Clone)]
struct Indexed {
    kind: EntryKind,
    /// Every entry found with this hex, in scan order. The first is the one used, as in the
    /// original; the rest are kept because an original part can hold a corrupt first copy (a
    /// download that failed mid-stream, then retried): upload verifies digests and may try the
    /// next one.
    locations: Vec<EntryLocation>,
}

/// Blob and manifest hex → location, for one bundle.
#[derive(Debug, Clone, Default)]
pub struct PartIndex {
    entries: HashMap<String, Indexed>,
}

impl PartIndex {
    /// The first entry with this hex, blob or manifest.
    pub fn get(&self, hex: &str) -> Option<&EntryLocation> {
        self.candidates(hex).first()
    }

    /// Every entry with this hex, first (preferred) first.
    pub fn candidates(&self, hex: &str) -> &[EntryLocation] {
        self.entries
            .get(hex)
            .map(|indexed| indexed.locations.as_slice())
            .unwrap_or_default()
    }

    /// The first entry with this hex if it holds a blob.
    pub fn blob(&self, hex: &str) -> Option<&EntryLocation> {
        self.of_kind(hex, EntryKind::Blob)
    }

    /// The first entry with this hex if it holds a manifest.
    pub fn manifest(&self, hex: &str) -> Option<&EntryLocation> {
        self.of_kind(hex, EntryKind::Manifest)
    }

    fn of_kind(&self, hex: &str, kind: EntryKind) -> Option<&EntryLocation> {
        self.entries
            .get(hex)
            .filter(|indexed| indexed.kind == kind)
            .and_then(|indexed| indexed.locations.first())
    }

    pub fn kind(&self, hex: &str) -> Option<EntryKind> {
        self.entries.get(hex).map(|indexed| indexed.kind)
    }

    /// Every distinct hex with its kind and first location, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, EntryKind, &EntryLocation)> {
        self.entries.iter().filter_map(|(hex, indexed)| {
            Some((hex.as_str(), indexed.kind, indexed.locations.first()?))
        })
    }

    /// Distinct hexes indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a location; an earlier one for the same hex stays first.
    pub fn insert(&mut self, hex: &str, kind: EntryKind, location: EntryLocation) {
        self.entries
            .entry(hex.to_string())
            .or_insert_with(|| Indexed {
                kind,
                locations: Vec::new(),
            })
            .locations
            .push(location);
    }
}

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

/// The name the original gives a blob entry (`GetBlobSuffix`, with the fork's `+gzip` and
/// `+zstd`), which we keep so that the original can still find our blobs: `<hex>.tar.gz` for
/// gzip layers larger than 32 bytes, `<hex>.tar.zst` for zstd layers larger than 32 bytes,
/// `<hex>.tar` for uncompressed layers, `<hex>.json` for configs, `<hex>.raw` otherwise
/// (including the 32-byte empty gzip layer: the original's rule, kept for compatibility).
pub fn entry_name(hex: &str, media_type: &str, size: u64) -> String {
    let suffix =
        if (media_type.ends_with("tar.gzip") || media_type.ends_with("tar+gzip")) && size > 32 {
            ".tar.gz"
        } else if media_type.ends_with("tar+zstd") && size > 32 {
            ".tar.zst"
        } else if media_type.ends_with("tar") {
            ".tar"
        } else if media_type.ends_with("json") {
            ".json"
        } else {
            ".raw"
        };
    format!("{hex}{suffix}")
}

/// The entry name of a manifest we store: `<hex>.manifest.json`.
pub fn manifest_entry_name(hex: &str) -> String {
    format!("{hex}{MANIFEST_ENTRY_SUFFIX}")
}

/// The hex and kind an entry name stands for, or `None` for other entries (the docker single
/// file's `manifest.json` and `repositories`). Accepted: `<64hex>.manifest.json` (manifest),
/// `<64hex>.<suffix>`, `<64hex>/layer.<suffix>` and a bare `<64hex>` (blobs). The original
/// matched any name starting with the hex; we require one of these shapes so that a stray
/// entry cannot be mistaken for a blob.
pub fn entry_hex(name: &str) -> Option<(&str, EntryKind)> {
    let name = name.strip_prefix("./").unwrap_or(name);
    let hex = name.get(..64).filter(|hex| is_blob_hex(hex))?;
    let rest = &name[64..];
    if rest == MANIFEST_ENTRY_SUFFIX {
        Some((hex, EntryKind::Manifest))
    } else if rest.is_empty()
        || (rest.len() > 1 && rest.starts_with('.') && !rest.contains('/'))
        || rest.starts_with("/layer.")
    {
        Some((hex, EntryKind::Blob))
    } else {
        None
    }
}

/// Why an entry name is unsafe, if it is: absolute (Unix or Windows) or with a `..` component.
fn unsafe_name(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if name.is_empty() {
        Some("has an empty name")
    } else if name.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        Some("has an absolute path")
    } else if name.split(['/', '\\']).any(|component| component == "..") {
        Some("has a `..` path component")
    } else {
        None
    }
}

/// Whether a symbolic link named `name` pointing at `target` (relative to its folder) points
/// at a file inside the archive.
fn link_stays_inside(name: &str, target: &str) -> bool {
    if target.is_empty() || unsafe_name(target) == Some("has an absolute path") {
        return false;
    }
    let mut depth: i64 = name.split('/').count() as i64 - 1;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    depth > 0
}

/// Why an entry type is refused, if it is. Only regular files (typeflag `0` or NUL, any mode:
/// the original wrote mode 0o060) hold blobs; a PAX global header is metadata and is skipped.
fn unsafe_type(kind: tar::EntryType) -> Option<&'static str> {
    use tar::EntryType;
    match kind {
        EntryType::Regular | EntryType::XGlobalHeader => None,
        EntryType::Symlink => Some("is a symbolic link"),
        EntryType::Link => Some("is a hard link"),
        EntryType::Directory => Some("is a directory"),
        EntryType::Char | EntryType::Block => Some("is a device"),
        EntryType::Fifo => Some("is a FIFO"),
        _ => Some("is not a regular file"),
    }
}

/// The whole-stream compression a file starts with, by magic number, or `None` for anything
/// else (a tar stream starts with a file name). The original CLI recorded `zstd`, `xz`, … in
/// the meta while writing plain tar, so the meta's word is not enough: the bytes decide.
pub fn detect_compression(path: &Path) -> io::Result<Option<&'static str>> {
    let mut magic = [0u8; 6];
    let mut file = File::open(path)?;
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(compression_of(&magic[..read]))
}

fn compression_of(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some("xz")
    } else if magic.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        Some("lz4")
    } else if magic.starts_with(b"hsqs") {
        Some("squashfs")
    } else {
        None
    }
}

/// Passes reads and seeks through and notes whether the stream ever ran out. The tar crate
/// treats end of file where a header should be as a normal end of archive; a well-formed part
/// ends with zero blocks before its end of file, so running out means it was cut short.
struct EofWatch<R> {
    inner: R,
    ran_out: Rc<Cell<bool>>,
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ran_out.set(true);
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for EofWatch<R> {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        self.inner.seek(position)
    }
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// Indexes one uncompressed tar part: every entry's name and data location, in order. Headers
/// are read one by one and the data is seeked over, so this costs one small read per entry.
pub fn index_part(path: &Path, file_name: &str) -> Result<Vec<(String, EntryLocation)>, PartError> {
    let io_error = |source: io::Error| PartError::Io {
        file: file_name.to_string(),
        source,
    };
    let mut file = File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            PartError::Missing {
                file: file_name.to_string(),
                path: path.to_path_buf(),
            }
        } else {
            io_error(source)
        }
    })?;
    let len = file.metadata().map_err(io_error)?.len();
    let mut magic = [0u8; 6];
    let read = file.read(&mut magic).map_err(io_error)?;
    if let Some(compression) = compression_of(&magic[..read]) {
        return Err(PartError::Compressed {
            file: file_name.to_string(),
            compression,
        });
    }
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    let ran_out = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(EofWatch {
        inner: file,
        ran_out: Rc::clone(&ran_out),
    });
    let entries = archive.entries_with_seek().map_err(io_error)?;
    scan(entries, &ran_out, file_name, Some(len))
}

/// Indexes an OCI archive: as [`index_part`], except that directories and hard links are
/// passed over. An OCI layout in a tar has directory entries, and the fork's docker-save half
/// links to the OCI blobs; neither is ever followed or written out here, since entries are
/// read by their place in the tar.
///
/// Go's archive/tar, which the fork uses, records a hard link's target size in its header but
/// writes no data after it (a "header-only" type), where the tar crate would skip that many
/// bytes; so the headers are read here, as Go reads them.
pub fn index_archive_part(
    path: &Path,
    file_name: &str,
) -> Result<Vec<(String, EntryLocation)>, PartError> {
    let io_error = |source: io::Error| PartError::Io {
        file: file_name.to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let corrupt = |at: u64, detail: &str| PartError::Corrupt {
        file: file_name.to_string(),
        detail: format!("at byte {at}: {detail}"),
    };
    let truncated = |at: u64| PartError::Truncated {
        file: file_name.to_string(),
        detail: format!("it ends at byte {len}, inside the entry whose header is at byte {at}"),
    };
    let mut found = Vec::new();
    let mut position = 0u64;
    let mut long_name: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    loop {
        let mut header = [0u8; BLOCK as usize];
        if position + BLOCK > len {
            return Err(truncated(position));
        }
        file.seek(SeekFrom::Start(position)).map_err(io_error)?;
        file.read_exact(&mut header).map_err(io_error)?;
        if header.iter().all(|&byte| byte == 0) {
            break;
        }
        let stored: u64 = octal(&header[148..156])
            .ok_or_else(|| corrupt(position, "bad header checksum field"))?;
        let computed: u64 = header
            .iter()
            .enumerate()
            .map(|(at, &byte)| {
                if (148..156).contains(&at) {
                    32
                } else {
                    u64::from(byte)
                }
            })
            .sum();
        if stored != computed {
            return Err(corrupt(position, "header checksum does not match"));
        }
        let header_size =
            header_number(&header[124..136]).ok_or_else(|| corrupt(position, "bad size field"))?;
        let kind = header[156];
        let data = position + BLOCK;
        // Header-only types carry no data, whatever their size field says.
        let data_size = match kind {
            b'1'..=b'6' => 0,
            _ => header_size,
        };
        let next = data
            .checked_add(padded(data_size))
            .filter(|&next| next <= len)
            .ok_or_else(|| truncated(position))?;
        let read_data = |file: &mut File, limit: u64| -> Result<Vec<u8>, PartError> {
            if data_size > limit {
                return Err(corrupt(position, "an extended header is too large"));
            }
            let mut bytes = vec![0u8; data_size as usize];
            file.read_exact(&mut bytes).map_err(io_error)?;
            Ok(bytes)
        };
        match kind {
            b'x' => {
                for (key, value) in pax_records(&read_data(&mut file, 1 << 20)?) {
                    match key.as_str() {
                        "path" => long_name = Some(value),
                        "size" => pax_size = value.parse().ok(),
                        _ => {}
                    }
                }
            }
            b'L' => {
                let bytes = read_data(&mut file, 64 << 10)?;
                let name = bytes.split(|&byte| byte == 0).next().unwrap_or_default();
                long_name = Some(String::from_utf8_lossy(name).into_owned());
            }
            b'g' => {}
            _ => {
                let name = long_name.take().unwrap_or_else(|| header_name(&header));
                let size = pax_size.take().unwrap_or(data_size);
                let entry_type = tar::EntryType::new(kind);
                if entry_type == tar::EntryType::Link || entry_type == tar::EntryType::Directory {
                    position = next;
                    continue;
                }
                // `docker save` archives of skopeo and Podman link Docker's old layer paths
                // (`<id>/layer.tar`) to the layer files; nothing here follows a link, so one
                // that stays inside the archive is passed over like a hard link.
                if entry_type == tar::EntryType::Symlink
                    && unsafe_name(&name).is_none()
                    && link_stays_inside(&name, &nul_terminated(&header[157..257]))
                {
                    position = next;
                    continue;
                }
                if let Some(reason) = unsafe_type(entry_type).or_else(|| unsafe_name(&name)) {
                    return Err(PartError::UnsafeEntry {
                        file: file_name.to_string(),
                        name,
                        reason,
                    });
                }
                let next = data
                    .checked_add(padded(size))
                    .filter(|&next| next <= len)
                    .ok_or_else(|| truncated(position))?;
                found.push((
                    name,
                    EntryLocation {
                        file: file_name.to_string(),
                        offset: data,
                        size,
                    },
                ));
                position = next;
                continue;
            }
        }
        position = next;
    }
    Ok(found)
}

/// An octal header field (NUL- or space-terminated).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// A size field: octal, or GNU base-256 when its first byte has the high bit set.
fn header_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut value = u64::from(field[0] & 0x7f);
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        Some(value)
    } else {
        octal(field)
    }
}

/// A NUL-terminated header field as text.
fn nul_terminated(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `prefix/name` of a ustar header, or the name of an older one.
fn header_name(header: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    if &header[257..262] == b"ustar" {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// The `length key=value\n` records of a PAX extended header.
fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(length) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > space && n <= rest.len())
        else {
            break;
        };
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(equals) = record.iter().position(|&b| b == b'=') {
            records.push((
                String::from_utf8_lossy(&record[..equals]).into_owned(),
                String::from_utf8_lossy(&record[equals + 1..]).into_owned(),
            ));
        }
        rest = &rest[length..];
    }
    records
}

/// Indexes an uncompressed tar stream read from start to end, e.g. a decompressing reader
/// over a `zstd` part; offsets are positions in the decompressed stream.
pub fn index_reader<R: Read>(
    reader: R,
    file_name: &str,
) -> Result<Vec<(String, EntryLocation)>, PartError> {
    let ran_out = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(EofWatch {
        inner: reader,
        ran_out: Rc::clone(&ran_out),
    });
    let entries = archive.entries().map_err(|source| PartError::Io {
        file: file_name.to_string(),
        source,
    })?;
    scan(entries, &ran_out, file_name, None)
}

fn scan<R: Read>(
    entries: tar::Entries<'_, R>,
    ran_out: &Cell<bool>,
    file_name: &str,
    len: Option<u64>,
) -> Result<Vec<(String, EntryLocation)>, PartError> {
    let truncated = |end: u64| {
        let detail = match len {
            Some(len) => format!(
                "it ends at byte {len}, before the end-of-archive marker (the last complete \
                 entry ends at byte {end})"
            ),
            None => format!(
                "the stream ends before the end-of-archive marker (the last complete entry \
                 ends at byte {end})"
            ),
        };
        PartError::Truncated {
            file: file_name.to_string(),
            detail,
        }
    };
    let mut found = Vec::new();
    // Where the last complete entry (header, data and padding) ends.
    let mut end = 0u64;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(_) if ran_out.get() => return Err(truncated(end)),
            Err(error) => {
                return Err(PartError::Corrupt {
                    file: file_name.to_string(),
                    detail: format!("after byte {end}: {error}"),
                });
            }
        };
        let kind = entry.header().entry_type();
        let name = match String::from_utf8(entry.path_bytes().into_owned()) {
            Ok(name) => name,
            Err(error) => {
                return Err(PartError::UnsafeEntry {
                    file: file_name.to_string(),
                    name: String::from_utf8_lossy(error.as_bytes()).into_owned(),
                    reason: "has a name that is not UTF-8",
                });
            }
        };
        if let Some(reason) = unsafe_type(kind).or_else(|| unsafe_name(&name)) {
            return Err(PartError::UnsafeEntry {
                file: file_name.to_string(),
                name,
                reason,
            });
        }
        let offset = entry.raw_file_position();
        let size = entry.size();
        let data_end = offset.saturating_add(size);
        if let Some(len) = len
            && data_end > len
        {
            return Err(PartError::Truncated {
                file: file_name.to_string(),
                detail: format!(
                    "it ends at byte {len}, inside entry {name:?} whose data runs to byte \
                     {data_end}"
                ),
            });
        }
        end = offset.saturating_add(padded(size));
        if kind.is_pax_global_extensions() {
            continue;
        }
        found.push((
            name,
            EntryLocation {
                file: file_name.to_string(),
                offset,
                size,
            },
        ));
    }
    if ran_out.get() {
        return Err(truncated(end));
    }
    Ok(found)
}

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

/// Builds the index of a bundle whose meta is `meta` and whose parts are in `dir`.
///
/// Parts are checked first ([`check_parts`]; the first problem is returned). A meta with
/// `entries` (ours) is used as is: hexes of manifests the meta holds are manifest entries,
/// the rest blobs. Otherwise (the original's) every part is scanned once, in the meta's
/// (sorted) order, and entry names are mapped to hexes by [`entry_hex`]; the first entry of a
/// hex wins, as in the original. Such parts must be plain tar, whatever `compressor` says
/// (the original CLI wrote plain tar under any name); a really compressed part gives
/// [`PartError::Compressed`], and the caller can decompress it through [`index_reader`].
pub fn index_bundle(meta: &BundleMeta, dir: &Path) -> Result<PartIndex, PartError> {
    if let Err(mut problems) = check_parts(meta, dir) {
        return Err(problems.swap_remove(0));
    }
    let mut index = PartIndex::default();
    if !meta.entries.is_empty() {
        let manifests: BTreeSet<String> = meta.manifest_hexes();
        for (hex, location) in &meta.entries {
            let kind = if manifests.contains(hex) {
                EntryKind::Manifest
            } else {
                EntryKind::Blob
            };
            index.insert(hex, kind, location.clone());
        }
        return Ok(index);
    }
    for name in meta.datafiles.keys() {
        for (entry, location) in index_part(&dir.join(name), name)? {
            if let Some((hex, kind)) = entry_hex(&entry) {
                index.insert(hex, kind, location);
            }
        }
    }
    Ok(index)
}

/// Opens an entry of an uncompressed part for reading: the file, seeked to the data, limited
/// to its size. Fails if the location is not inside the file (the caller must not stream a
/// short blob) or names anything but a plain file in `dir`.
pub fn open_entry(dir: &Path, location: &EntryLocation) -> io::Result<io::Take<File>> {
    if !is_plain_file_name(&location.file) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} is not a data file name", location.file),
        ));
    }
    let mut file = File::open(dir.join(&location.file))?;
    let len = file.metadata()?.len();
    let inside = location
        .offset
        .checked_add(location.size)
        .is_some_and(|end| end <= len);
    if !inside {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "data file {} has {len} bytes; the entry at {} needs {} more",
                location.file, location.offset, location.size
            ),
        ));
    }
    file.seek(SeekFrom::Start(location.offset))?;
    Ok(file.take(location.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::manifest::ImageManifest;
    use registry::{Digest, DigestHasher};

    use crate::bundle::fixtures::{FULL, INCR, fixture_dir};

    fn sha256_of_entry(dir: &Path, location: &EntryLocation) -> Digest {
        let mut reader = open_entry(dir, location).unwrap();
        let mut hasher = DigestHasher::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        assert_eq!(hasher.len(), location.size);
        hasher.finish()
    }

    #[test]
    fn indexes_the_original_full_bundle() {
        let dir = fixture_dir();
        let meta = BundleMeta::read(&dir.join(FULL)).unwrap();
        check_parts(&meta, &dir).unwrap();
        let index = index_bundle(&meta, &dir).unwrap();
        let referenced = meta.referenced_blobs();
        assert_eq!(index.len(), referenced.len());
        for (hex, size) in &referenced {
            let location = index.blob(hex).unwrap_or_else(|| panic!("{hex} not found"));
            assert_eq!(location.size, *size, "{hex}");
            assert_eq!(sha256_of_entry(&dir, location).hex(), hex);
        }
        // The original's entry names follow the suffix rule we reproduce.
        let mut media_types = HashMap::new();
        for text in meta.manifests.values() {
            let image: ImageManifest = serde_json::from_str(text).unwrap();
            for blob in image.blobs() {
                media_types.insert(blob.digest.hex().to_string(), blob.media_type.clone());
            }
        }
        for name in meta.datafiles.keys() {
            for (entry, location) in index_part(&dir.join(name), name).unwrap() {
                let (hex, kind) = entry_hex(&entry).unwrap();
                assert_eq!(kind, EntryKind::Blob);
                assert_eq!(entry, entry_name(hex, &media_types[hex], location.size));
            }
        }
    }

    #[test]
    fn indexes_the_original_incremental_bundle() {
        let dir = fixture_dir();
        let meta = BundleMeta::read(&dir.join(INCR)).unwrap();
        let index = index_bundle(&meta, &dir).unwrap();
        let carried: Vec<_> = meta.blobs_carried().collect();
        assert_eq!(index.len(), carried.len());
        let referenced = meta.referenced_blobs();
        for blob in &carried {
            let hex = blob.digest.hex();
            let location = index.get(hex).unwrap();
            assert_eq!(location.size, referenced[hex]);
            assert_eq!(sha256_of_entry(&dir, location), blob.digest);
        }
        for blob in meta.blobs_assumed() {
            assert!(index.get(blob.digest.hex()).is_none());
        }
    }

    #[test]
    fn stream_indexing_matches_file_indexing() {
        let dir = fixture_dir();
        let name = "img_full_202611230708_1.tar";
        let bytes = fs::read(dir.join(name)).unwrap();
        assert_eq!(
            index_reader(&bytes[..], name).unwrap(),
            index_part(&dir.join(name), name).unwrap()
        );
    }

    // ---- hand-made tar streams ----

    fn header(name: &[u8], typeflag: u8, mode: u32, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.as_old_mut().linkflag = [typeflag];
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    fn symlink(name: &[u8], target: &[u8]) -> Vec<u8> {
        let mut link = header(name, b'2', 0o777, 0);
        link[157..157 + target.len()].copy_from_slice(target);
        let mut with_sum = tar::Header::new_old();
        with_sum.as_mut_bytes().copy_from_slice(&link);
        with_sum.set_cksum();
        with_sum.as_bytes().to_vec()
    }

    fn entry(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut bytes = header(name, typeflag, 0o644, data.len() as u64);
        bytes.extend_from_slice(data);
        bytes.resize(
            bytes.len() + (padded(data.len() as u64) as usize - data.len()),
            0,
        );
        bytes
    }

    fn finish(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.extend_from_slice(&[0u8; 1024]);
        bytes
    }

    fn hex_of(data: &[u8]) -> String {
        Digest::of(data).hex().to_string()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn accepts_the_originals_odd_headers_and_long_names() {
        let temp = tempfile::tempdir().unwrap();
        let layer = b"layer bytes".to_vec();
        let config = b"{\"config\":true}".to_vec();
        let long = format!("{}/{}", "d".repeat(90), "f".repeat(90));
        let pax_name = format!("{}.tar.gz", hex_of(&layer));

        let mut bytes = Vec::new();
        // The original: mode 0o060, typeflag NUL or '0'.
        let name = entry_name(
            &hex_of(&config),
            "application/vnd.oci.image.config.v1+json",
            15,
        );
        let mut first = header(name.as_bytes(), 0, 0o060, config.len() as u64);
        first.extend_from_slice(&config);
        first.resize(1024, 0);
        bytes.extend(first);
        // A PAX global header is metadata: skipped.
        bytes.extend(entry(b"pax_global_header", b'g', b"18 comment=hello\n"));
        // A PAX path record overrides the header name.
        let record = format!("path={pax_name}\n");
        // The length counts itself: two digits and a space here.
        let record = format!("{} {record}", record.len() + 3);
        assert_eq!(
            record.len(),
            record.split(' ').next().unwrap().parse::<usize>().unwrap()
        );
        bytes.extend(entry(b"PaxHeaders/x", b'x', record.as_bytes()));
        bytes.extend(entry(b"ignored-name", b'0', &layer));
        // A GNU long name.
        bytes.extend(entry(
            b"././@LongLink",
            b'L',
            format!("{long}\0").as_bytes(),
        ));
        bytes.extend(entry(&long.as_bytes()[..100], b'0', b"long"));
        let path = write(temp.path(), "p_0.tar", &finish(bytes));

        let found = index_part(&path, "p_0.tar").unwrap();
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec![name.as_str(), pax_name.as_str(), long.as_str()]);
        assert_eq!(found[0].1.offset, 512);
        for (data, (_, location)) in [&config[..], &layer[..], b"long"].iter().zip(&found) {
            let mut content = Vec::new();
            open_entry(temp.path(), location)
                .unwrap()
                .read_to_end(&mut content)
                .unwrap();
            assert_eq!(&content, data);
        }
    }

    #[test]
    fn refuses_unsafe_entries() {
        let temp = tempfile::tempdir().unwrap();
        let cases: [(&[u8], u8, &str); 9] = [
            (b"../x", b'0', "has a `..` path component"),
            (b"a/../../x", b'0', "has a `..` path component"),
            (b"/etc/x", b'0', "has an absolute path"),
            (b"C:\\x", b'0', "has an absolute path"),
            (b"link", b'2', "is a symbolic link"),
            (b"hard", b'1', "is a hard link"),
            (b"dir/", b'5', "is a directory"),
            (b"fifo", b'6', "is a FIFO"),
            (b"dev", b'3', "is a device"),
        ];
        for (name, typeflag, expected) in cases {
            let mut bytes = entry(b"aa.json", b'0', b"fine");
            bytes.extend(entry(name, typeflag, b""));
            let path = write(temp.path(), "u.tar", &finish(bytes));
            match index_part(&path, "u.tar") {
                Err(PartError::UnsafeEntry {
                    file,
                    name: got,
                    reason,
                }) => {
                    assert_eq!(file, "u.tar");
                    assert_eq!(got.as_bytes(), name);
                    assert_eq!(reason, expected);
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(name)),
            }
        }
        let message = PartError::UnsafeEntry {
            file: "u.tar".into(),
            name: "../x".into(),
            reason: "has a `..` path component",
        }
        .to_string();
        assert!(
            message.contains("u.tar") && message.contains("\"../x\""),
            "{message}"
        );
    }

    #[test]
    fn detects_truncated_parts() {
        let temp = tempfile::tempdir().unwrap();
        let data = vec![7u8; 3000];
        let mut whole = entry(b"a.raw", b'0', b"x");
        whole.extend(entry(b"b.raw", b'0', &data));
        let complete = whole.len();
        let whole = finish(whole);
        let path = write(temp.path(), "ok.tar", &whole);
        assert_eq!(index_part(&path, "ok.tar").unwrap().len(), 2);

        for (cut, what) in [
            (1024 + 512 + 100, "inside the data"),
            (complete, "no end-of-archive marker"),
            (1024 + 200, "inside a header"),
            (0, "empty"),
        ] {
            let path = write(temp.path(), "t.tar", &whole[..cut]);
            match index_part(&path, "t.tar") {
                Err(PartError::Truncated { file, detail }) => {
                    assert_eq!(file, "t.tar");
                    assert!(detail.contains(&format!("byte {cut}")), "{what}: {detail}");
                }
                other => panic!("{what}: {other:?}"),
            }
            match index_reader(&whole[..cut], "t.tar") {
                Err(PartError::Truncated { .. }) => {}
                other => panic!("stream, {what}: {other:?}"),
            }
        }
        // A damaged header is corruption, not truncation.
        let mut damaged = whole.clone();
        damaged[1024 + 10] ^= 0xff;
        let path = write(temp.path(), "c.tar", &damaged);
        assert!(matches!(
            index_part(&path, "c.tar"),
            Err(PartError::Corrupt { .. })
        ));
    }

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

    #[test]
    fn uses_our_entry_table_without_scanning() {
        let temp = tempfile::tempdir().unwrap();
        let blob = b"blob".to_vec();
        let manifest = "{\"schemaVersion\":2}".to_string();
        let mut bytes = entry(
            entry_name(&hex_of(&blob), "x.tar", 4).as_bytes(),
            b'0',
            &blob,
        );
        bytes.extend(entry(
            manifest_entry_name(&hex_of(manifest.as_bytes())).as_bytes(),
            b'0',
            manifest.as_bytes(),
        ));
        let bytes = finish(bytes);
        write(temp.path(), "o_0.tar", &bytes);

        let mut meta = BundleMeta::new_ours();
        meta.datafiles.insert("o_0.tar".into(), bytes.len() as u64);
        meta.manifests
            .insert("http://h/r:1".into(), manifest.clone());
        let blob_at = EntryLocation {
            file: "o_0.tar".into(),
            offset: 512,
            size: 4,
        };
        let manifest_at = EntryLocation {
            file: "o_0.tar".into(),
            offset: 1536,
            size: manifest.len() as u64,
        };
        meta.entries.insert(hex_of(&blob), blob_at.clone());
        meta.entries
            .insert(hex_of(manifest.as_bytes()), manifest_at.clone());
        let index = index_bundle(&meta, temp.path()).unwrap();
        assert_eq!(index.blob(&hex_of(&blob)), Some(&blob_at));
        assert_eq!(
            index.manifest(&hex_of(manifest.as_bytes())),
            Some(&manifest_at)
        );
        assert_eq!(index.blob(&hex_of(manifest.as_bytes())), None);
        assert_eq!(sha256_of_entry(temp.path(), &blob_at).hex(), hex_of(&blob));

        // Scanning the same part finds the same places.
        let mut scanned = meta.clone();
        scanned.entries.clear();
        let by_scan = index_bundle(&scanned, temp.path()).unwrap();
        assert_eq!(by_scan.get(&hex_of(&blob)), Some(&blob_at));
        assert_eq!(
            by_scan.manifest(&hex_of(manifest.as_bytes())),
            Some(&manifest_at)
        );

        // The table is trusted for places, not for bounds.
        meta.entries.insert(
            hex_of(b"other"),
            EntryLocation {
                file: "o_0.tar".into(),
                offset: bytes.len() as u64,
                size: 1,
            },
        );
        assert!(matches!(
            index_bundle(&meta, temp.path()),
            Err(PartError::EntryOutOfRange { .. })
        ));
    }

    #[test]
    fn first_entry_wins_and_later_copies_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        let hex = "c".repeat(64);
        let mut bytes = entry(format!("{hex}.tar.gz").as_bytes(), b'0', b"bad!");
        bytes.extend(entry(format!("{hex}.tar.gz").as_bytes(), b'0', b"good"));
        let bytes = finish(bytes);
        write(temp.path(), "d_0.tar", &bytes);
        let mut meta = BundleMeta::default();
        meta.datafiles.insert("d_0.tar".into(), bytes.len() as u64);
        let index = index_bundle(&meta, temp.path()).unwrap();
        assert_eq!(index.get(&hex).unwrap().offset, 512);
        assert_eq!(
            index
                .candidates(&hex)
                .iter()
                .map(|l| l.offset)
                .collect::<Vec<_>>(),
            vec![512, 1536]
        );
        assert!(index.candidates(&"d".repeat(64)).is_empty());
    }

    #[test]
    fn refuses_really_compressed_parts() {
        let temp = tempfile::tempdir().unwrap();
        for (magic, compression) in [
            (&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..], "zstd"),
            (&[0x1f, 0x8b, 8, 0, 0, 0][..], "gzip"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
        ] {
            let path = write(temp.path(), "z.tar", magic);
            assert_eq!(detect_compression(&path).unwrap(), Some(compression));
            assert!(matches!(
                index_part(&path, "z.tar"),
                Err(PartError::Compressed { compression: c, .. }) if c == compression
            ));
        }
        let dir = fixture_dir();
        assert_eq!(
            detect_compression(&dir.join("img_full_202611230708_0.tar")).unwrap(),
            None
        );
        assert!(matches!(
            index_part(&temp.path().join("none.tar"), "none.tar"),
            Err(PartError::Missing { .. })
        ));
    }

    #[test]
    fn open_entry_stays_inside_the_file_and_the_directory() {
        let temp = tempfile::tempdir().unwrap();
        write(temp.path(), "e.tar", &[1u8; 1024]);
        let at = |file: &str, offset, size| EntryLocation {
            file: file.into(),
            offset,
            size,
        };
        let mut content = Vec::new();
        open_entry(temp.path(), &at("e.tar", 1000, 24))
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content.len(), 24);
        let short = open_entry(temp.path(), &at("e.tar", 1000, 25)).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        assert!(open_entry(temp.path(), &at("e.tar", u64::MAX, 2)).is_err());
        let escape = open_entry(temp.path(), &at("../e.tar", 0, 1)).unwrap_err();
        assert_eq!(escape.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn maps_entry_names_to_hexes() {
        let hex = "0123456789abcdef".repeat(4);
        let blob = Some((hex.as_str(), EntryKind::Blob));
        assert_eq!(entry_hex(&format!("{hex}.tar.gz")), blob);
        assert_eq!(entry_hex(&format!("{hex}.json")), blob);
        assert_eq!(entry_hex(&format!("{hex}.raw")), blob);
        assert_eq!(entry_hex(&format!("./{hex}.tar")), blob);
        assert_eq!(entry_hex(&format!("{hex}/layer.tar.gz")), blob);
        assert_eq!(entry_hex(&format!("{hex}/layer.raw")), blob);
        assert_eq!(entry_hex(&hex), blob);
        assert_eq!(
            entry_hex(&format!("{hex}.manifest.json")),
            Some((hex.as_str(), EntryKind::Manifest))
        );
        assert_eq!(entry_hex("manifest.json"), None);
        assert_eq!(entry_hex("repositories"), None);
        assert_eq!(entry_hex(&format!("{hex}/json")), None);
        assert_eq!(entry_hex(&format!("{hex}x.json")), None);
        assert_eq!(entry_hex(&format!("{hex}.")), None);
        assert_eq!(entry_hex(&format!("{}.json", hex.to_uppercase())), None);
        assert_eq!(entry_hex(&format!("{}.json", &hex[..63])), None);
        assert_eq!(entry_hex("ab☃"), None);
    }

    #[test]
    fn entry_names_follow_the_originals_suffix_table() {
        let hex = "f".repeat(64);
        for (media_type, size, suffix) in [
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                33,
                ".tar.gz",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                32,
                ".raw",
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                1000,
                ".tar.gz",
            ),
            ("application/vnd.oci.image.layer.v1.tar+gzip", 32, ".raw"),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                1000,
                ".tar.zst",
            ),
            ("application/vnd.oci.image.layer.v1.tar+zstd", 10, ".raw"),
            ("application/vnd.oci.image.layer.v1.tar", 10, ".tar"),
            ("application/vnd.oci.image.layer.v1.tar", 0, ".tar"),
            (
                "application/vnd.docker.container.image.v1+json",
                889,
                ".json",
            ),
            ("application/vnd.oci.image.config.v1+json", 2, ".json"),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                100,
                ".tar.gz",
            ),
            ("", 100, ".raw"),
            ("application/octet-stream", 100, ".raw"),
        ] {
            assert_eq!(
                entry_name(&hex, media_type, size),
                format!("{hex}{suffix}"),
                "{media_type} {size}"
            );
        }
        assert_eq!(manifest_entry_name(&hex), format!("{hex}.manifest.json"));
    }

    /// Go's archive/tar writes a hard link with its target's size and no data; the archive
    /// index reads past it as Go does, and still refuses what no bundle may hold.
    #[test]
    fn archive_index_passes_over_sized_hard_links_and_refuses_hostile_entries() {
        let temp = tempfile::tempdir().unwrap();
        let mut tar = header(b"blobs/", b'5', 0o755, 0);
        tar.extend(entry(b"blobs/sha256/aa", b'0', b"{\"a\":1}"));
        tar.extend(header(b"cfg.json", b'1', 0o644, 65_991));
        tar.extend(entry(b"index.json", b'0', b"{}"));
        tar.resize(tar.len() + 1024, 0);
        let path = temp.path().join("fork.tar");
        std::fs::write(&path, &tar).unwrap();
        let found = index_archive_part(&path, "fork.tar").unwrap();
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["blobs/sha256/aa", "index.json"]);
        assert_eq!(found[1].1.offset, 5 * 512);
        assert_eq!(found[1].1.size, 2);

        for (name, typeflag) in [
            (&b"../escape"[..], b'0'),
            (b"/etc/passwd", b'0'),
            (b"link", b'2'),
            (b"dev", b'3'),
        ] {
            let mut hostile = header(name, typeflag, 0o644, 0);
            hostile.resize(512 * 3, 0);
            std::fs::write(&path, &hostile).unwrap();
            assert!(
                matches!(
                    index_archive_part(&path, "fork.tar"),
                    Err(PartError::UnsafeEntry { .. })
                ),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        // skopeo's and Podman's links from Docker's old layer paths to the layer files.
        let mut linked = tar.clone();
        linked.truncate(linked.len() - 1024);
        linked.extend(symlink(b"abc/layer.tar", b"../layer_1.tar"));
        linked.resize(linked.len() + 1024, 0);
        std::fs::write(&path, &linked).unwrap();
        assert_eq!(index_archive_part(&path, "fork.tar").unwrap().len(), 2);
        for target in [&b"../../etc/passwd"[..], b"/etc/passwd", b".."] {
            let mut escaping = tar.clone();
            escaping.truncate(escaping.len() - 1024);
            escaping.extend(symlink(b"abc/layer.tar", target));
            escaping.resize(escaping.len() + 1024, 0);
            std::fs::write(&path, &escaping).unwrap();
            assert!(
                matches!(
                    index_archive_part(&path, "fork.tar"),
                    Err(PartError::UnsafeEntry { .. })
                ),
                "{}",
                String::from_utf8_lossy(target)
            );
        }
        // Cut inside an entry's data.
        std::fs::write(&path, &tar[..512 * 2 + 3]).unwrap();
        assert!(matches!(
            index_archive_part(&path, "fork.tar"),
            Err(PartError::Truncated { .. })
        ));
    }
}
