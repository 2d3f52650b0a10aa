//! Indexing a plain tar part with the tar crate: from the file (seeking over the data) or
//! as a stream (a decompressing reader), with the whole-file compression check before it and
//! truncation told apart from corruption. Separate from the archive indexer, which reads its
//! headers itself.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use super::unsafe_entries::{unsafe_name, unsafe_type};
use super::{EntryLocation, PartError};

pub(super) const BLOCK: u64 = 512;

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

pub(super) fn padded(size: u64) -> u64 {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::bundle::fixtures::fixture_dir;
    use crate::bundle::parts::tests::{entry, finish, header, hex_of, write};
    use crate::bundle::parts::{entry_name, open_entry};

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
}
