//! Which tar entries a data file may not hold (links, devices, directories, absolute or `..`
//! names): parts are untrusted input. Separate because both indexers ([`super::index_tar`] and
//! [`super::index_archive`]) refuse the same entries for the same reasons.

/// Why an entry name is unsafe, if it is: absolute (Unix or Windows) or with a `..` component.
pub(super) fn unsafe_name(name: &str) -> Option<&'static str> {
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
pub(super) fn link_stays_inside(name: &str, target: &str) -> bool {
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
pub(super) fn unsafe_type(kind: tar::EntryType) -> Option<&'static str> {
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
