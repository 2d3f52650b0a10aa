//! Text files as Windows tools write them. Image lists and cfg.yaml are often made on the jump
//! host itself: Notepad saves UTF-8 with a byte-order mark, PowerShell 5's `>` and `Out-File`
//! save UTF-16 LE with a byte-order mark, and both end lines with CRLF (the parsers accept CRLF).
//! Every such file is read through [`read`], so it means the same on every platform.

use std::path::Path;

use rust_i18n::t;

/// Reads `path` as text: UTF-8 (a byte-order mark dropped) or UTF-16 with a byte-order mark.
///
/// Anything else is refused with a sentence that says how to save the file, rather than read
/// with replacement characters that would turn into a baffling error further on. The error does
/// not repeat the path: every caller's message names the file already.
pub(crate) fn read(path: &Path) -> std::io::Result<String> {
    decode(&fs_err::read(path)?)
}

/// Decodes bytes from a file or standard input; see [`read`].
pub(crate) fn decode(bytes: &[u8]) -> std::io::Result<String> {
    let not_text = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            t!("error.not_utf8_or_utf16").to_string(),
        )
    };
    if let Some(utf16) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16(utf16, u16::from_le_bytes).ok_or_else(not_text);
    }
    if let Some(utf16) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return decode_utf16(utf16, u16::from_be_bytes).ok_or_else(not_text);
    }
    let utf8 = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(utf8.to_vec()).map_err(|_| not_text())
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le_with_bom(text: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    #[test]
    fn reads_what_windows_tools_write() {
        let text = "# 镜像\r\nvendor/app:1.0\r\n";
        assert_eq!(decode(text.as_bytes()).unwrap(), text);
        let notepad = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(decode(&notepad).unwrap(), text);
        assert_eq!(decode(&utf16le_with_bom(text)).unwrap(), text);
        let mut big_endian = vec![0xFE, 0xFF];
        big_endian.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&big_endian).unwrap(), text);
    }

    #[test]
    fn refuses_what_is_not_unicode_text() {
        let _guard = crate::i18n::LOCALE_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        rust_i18n::set_locale(crate::i18n::ENGLISH);
        // "镜像" in GBK, as a Chinese Windows saves "ANSI" text.
        let gbk = b"\xBE\xB5\xCF\xF1 vendor/app:1\n";
        let error = decode(gbk).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("UTF-8"), "{error}");
        // An odd number of bytes, or a lone surrogate, is not UTF-16 either.
        assert!(decode(&[0xFF, 0xFE, b'a']).is_err());
        assert!(decode(&[0xFF, 0xFE, 0x00, 0xD8]).is_err());
    }
}
