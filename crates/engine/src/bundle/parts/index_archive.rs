//! Indexing an OCI or docker archive part by reading its tar headers ourselves, as Go's
//! archive/tar reads them: the fork writes hard links with a size but no data, which the tar
//! crate would skip over. Separate because it is its own small tar header parser.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::index_tar::{BLOCK, padded};
use super::unsafe_entries::{link_stays_inside, unsafe_name, unsafe_type};
use super::{EntryLocation, PartError};

/// Indexes an OCI archive: as [`index_part`], except that directories and hard links are
/// passed over. An OCI layout in a tar has directory entries, and the fork's docker-save half
/// links to the OCI blobs; neither is ever followed or written out here, since entries are
/// read by their place in the tar.
///
/// Go's archive/tar, which the fork uses, records a hard link's target size in its header but
/// writes no data after it (a "header-only" type), where the tar crate would skip that many
/// bytes; so the headers are read here, as Go reads them.
///
/// [`index_part`]: super::index_part
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::parts::tests::{entry, header, symlink};

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
