//! How entries are named in a data file: the original's suffix rule for blobs, ours for
//! manifests, and the hex an entry name stands for. Separate because writing and indexing
//! both depend on it, and the names are what keeps the original able to read our bundles.

use super::EntryKind;
use crate::bundle::meta::is_blob_hex;

/// Suffix of a manifest stored as a data entry: `<hex>.manifest.json`. The original stored no
/// manifests in data files; ours does, so that the parts alone still describe their images.
/// The original's upload matches entries by hex prefix and never asks for a manifest's hex,
/// so these entries are invisible to it.
pub const MANIFEST_ENTRY_SUFFIX: &str = ".manifest.json";

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
