//! Rebuilds a layer's uncompressed tar, byte for byte, from vbatts/tar-split's JSON and the
//! layer's extracted files. The JSON has one entry a line: `type` 2 is a raw segment of the tar
//! stream (headers, padding; base64 `payload`), `type` 1 a file whose `size` bytes are read from
//! the extracted tree by `name` (`name_raw`, base64, when it is not UTF-8) and must match the
//! CRC-64 (ISO polynomial, as Go's `hash/crc64`) in `payload`.

use std::ffi::OsString;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::Problem;
use super::image::Image;

/// The longest line accepted: a segment holds headers (PAX ones can be long) and padding.
const MAX_LINE: u64 = 32 << 20;

const SEGMENT: u8 = 2;
const FILE: u8 = 1;

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    payload: Option<String>,
}

/// CRC-64 with the ISO polynomial, reflected, all ones in and out: Go's `crc64.ISO`.
pub(crate) struct Crc64 {
    table: [u64; 256],
    value: u64,
}

impl Crc64 {
    pub(crate) fn new() -> Crc64 {
        const POLY: u64 = 0xD800_0000_0000_0000;
        let mut table = [0u64; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        Crc64 { table, value: 0 }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut crc = !self.value;
        for &byte in bytes {
            crc = self.table[usize::from(crc as u8 ^ byte)] ^ (crc >> 8);
        }
        self.value = !crc;
    }

    pub(crate) fn sum(&self) -> [u8; 8] {
        self.value.to_be_bytes()
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The components of a tar-split file name below the layer's directory, or `None` if the name
/// leaves it (`..`) or names the directory itself. Leading `/` and `./` are dropped, as tar
/// does when extracting.
fn components(name: &[u8]) -> Option<Vec<OsString>> {
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            _ => parts.push(os_string(part)?),
        }
    }
    (!parts.is_empty()).then_some(parts)
}

#[cfg(unix)]
fn os_string(bytes: &[u8]) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    Some(OsString::from_vec(bytes.to_vec()))
}

/// Elsewhere a name must be UTF-8 without the platform's other separator, so that it is one
/// component, as it was in the image.
#[cfg(not(unix))]
fn os_string(bytes: &[u8]) -> Option<OsString> {
    let text = std::str::from_utf8(bytes).ok()?;
    (!text.contains(['\\', ':'])).then(|| OsString::from(text))
}

/// Writes the tar stream of layer `layer` (its directory in `image` is `/<layer>/`) to `out`.
pub(crate) fn reassemble(
    split: impl BufRead,
    image: &Image,
    layer: &str,
    out: &mut dyn Write,
) -> Result<(), Problem> {
    let damaged = |detail: String| Problem::TarSplit {
        layer: layer.to_string(),
        detail,
    };
    let mut crc = Crc64::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut line = Vec::new();
    let mut split = split;
    for number in 1.. {
        line.clear();
        let read = (&mut split)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| damaged(format!("line {number}: {e}")))?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && read as u64 == MAX_LINE {
            return Err(damaged(format!(
                "line {number} is longer than {MAX_LINE} bytes"
            )));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: Entry =
            serde_json::from_slice(&line).map_err(|e| damaged(format!("line {number}: {e}")))?;
        let payload = match entry.payload.as_deref() {
            None => Vec::new(),
            Some(text) => {
                decode(text).ok_or_else(|| damaged(format!("line {number}: bad base64")))?
            }
        };
        match entry.kind {
            SEGMENT => out.write_all(&payload).map_err(Problem::Io)?,
            FILE => {
                // Empty files and hard links (size 0) have no bytes in the stream.
                if entry.size == 0 {
                    continue;
                }
                let size = u64::try_from(entry.size)
                    .map_err(|_| damaged(format!("line {number}: negative size")))?;
                let name = match (&entry.name_raw, &entry.name) {
                    (Some(raw), _) if !raw.is_empty() => decode(raw)
                        .ok_or_else(|| damaged(format!("line {number}: bad base64 name")))?,
                    (_, Some(name)) => name.as_bytes().to_vec(),
                    _ => return Err(damaged(format!("line {number}: a file without a name"))),
                };
                let shown = String::from_utf8_lossy(&name).into_owned();
                let parts = components(&name).ok_or_else(|| Problem::UnsafePath {
                    layer: layer.to_string(),
                    name: shown.clone(),
                })?;
                let mut path = PathBuf::from("/");
                path.push(layer);
                path.extend(parts);
                let file = image.file_at(&path).ok_or_else(|| Problem::MissingFile {
                    layer: layer.to_string(),
                    name: shown.clone(),
                })?;
                if file.len() != size {
                    return Err(Problem::FileSize {
                        layer: layer.to_string(),
                        name: shown,
                        expected: size,
                        actual: file.len(),
                    });
                }
                crc.value = 0;
                let mut reader = image.reader(file);
                loop {
                    let count = match reader.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(count) => count,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                        Err(error) => return Err(Problem::from_io(error)),
                    };
                    crc.update(&buffer[..count]);
                    out.write_all(&buffer[..count]).map_err(Problem::Io)?;
                }
                if payload != crc.sum() {
                    return Err(Problem::Checksum {
                        layer: layer.to_string(),
                        name: shown,
                    });
                }
            }
            other => {
                return Err(damaged(format!(
                    "line {number}: unknown entry type {other}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_gos_iso_table() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ISO)).
        let mut crc = Crc64::new();
        crc.update(b"123456789");
        assert_eq!(crc.value, 0xb909_56c7_75a4_1001);
        let mut split = Crc64::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.sum(), crc.sum());
    }

    #[test]
    fn names_stay_inside_the_layer() {
        let parts = |name: &str| {
            components(name.as_bytes()).map(|parts| {
                parts
                    .into_iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(parts("a/b.txt"), Some(vec!["a".into(), "b.txt".into()]));
        assert_eq!(parts("./a//b/"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            parts("/etc/passwd"),
            Some(vec!["etc".into(), "passwd".into()])
        );
        assert_eq!(parts("../x"), None);
        assert_eq!(parts("a/../../x"), None);
        assert_eq!(parts("./"), None);
    }
}
