//! Helpers shared by the bundle tests (`bundles.rs`) and the single-file archive tests
//! (`archives.rs`), which used to carry a copy each: the meta file read into the tests' own
//! structs, running `save`, `verify` and `upload`, and a small tar reader.
//!
//! They stay independent of the product on purpose: the meta is parsed with serde-saphyr into
//! these structs rather than the product's `BundleMeta`, and tar streams are read byte by byte
//! here rather than with the product's tar code (or the `tar` crate, which is not a
//! dev-dependency of this package), so that a bug in the product's readers cannot hide itself.

use fs_err as fs;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;
use testkit::{PushedImage, TestRegistry, sha256_digest, skopeo_copy_to_oci_dir};

use crate::common::{image_transmit, served_digest, stderr_of, stdout_of, workdir};

// ---------------------------------------------------------------------------------------------
// The meta file, as the tests read it (independently of the product's parser).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Meta {
    pub(crate) datafiles: BTreeMap<String, u64>,
    pub(crate) compressor: Option<String>,
    pub(crate) blobs: BTreeMap<String, Option<Vec<String>>>,
    pub(crate) manifests: BTreeMap<String, String>,
    pub(crate) format: Option<u64>,
    pub(crate) datafile_sha256: BTreeMap<String, String>,
    pub(crate) child_manifests: BTreeMap<String, String>,
    pub(crate) entries: BTreeMap<String, EntryLocation>,
    pub(crate) base_blobs: BTreeMap<String, BaseBlob>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct EntryLocation {
    pub(crate) file: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BaseBlob {
    pub(crate) size: Option<u64>,
    pub(crate) repositories: Option<Vec<String>>,
}

impl Meta {
    #[track_caller]
    pub(crate) fn read(path: &Path) -> Meta {
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read meta {}: {e}", path.display()));
        serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse meta {}: {e}\n{text}", path.display()))
    }

    /// The hexes of every manifest the meta holds (top-level and children): entries with
    /// these hexes are stored manifests, not blobs.
    pub(crate) fn manifest_hexes(&self) -> BTreeSet<String> {
        self.manifests
            .values()
            .chain(self.child_manifests.values())
            .map(|text| hex_of(&sha256_digest(text.as_bytes())))
            .collect()
    }

    /// The hexes of the blobs (not manifests) stored in this bundle's parts, per `entries`.
    pub(crate) fn stored_blobs(&self) -> BTreeSet<String> {
        let manifests = self.manifest_hexes();
        self.entries
            .keys()
            .filter(|hex| !manifests.contains(*hex))
            .cloned()
            .collect()
    }

    /// The image key (`http://host/repo:tag`) of the image in `repository:tag`.
    #[track_caller]
    pub(crate) fn key_of(&self, repository: &str, tag: &str) -> String {
        let suffix = format!("/{repository}:{tag}");
        self.manifests
            .keys()
            .find(|key| key.ends_with(&suffix))
            .unwrap_or_else(|| panic!("no image {repository}:{tag} in {:?}", self.manifests.keys()))
            .clone()
    }

    /// The set of `repository:tag` (key without scheme and host) of the images in the meta.
    pub(crate) fn images(&self) -> BTreeSet<String> {
        self.manifests.keys().map(|key| image_of_key(key)).collect()
    }
}

/// `http://127.0.0.1:5103/team/app0:latest` → `team/app0:latest`.
pub(crate) fn image_of_key(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    without_scheme
        .split_once('/')
        .map_or(without_scheme, |(_, rest)| rest)
        .to_owned()
}

/// `sha256:abc…` → `abc…`.
pub(crate) fn hex_of(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Running the binary.
// ---------------------------------------------------------------------------------------------

pub(crate) fn output_text(output: &Output) -> String {
    format!("{}{}", stdout_of(output), stderr_of(output))
}

#[track_caller]
pub(crate) fn assert_success(output: &Output) {
    let text = output_text(output);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// The meta file a save announced on its "Create meta file: PATH" line, made absolute.
#[track_caller]
pub(crate) fn announced_meta(dir: &Path, output: &Output) -> PathBuf {
    let stdout = stdout_of(output);
    let path = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Create meta file: "))
        .unwrap_or_else(|| panic!("save announced no meta file:\n{}", output_text(output)));
    let path = dir.join(path.trim());
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

/// `image-transmit save --from SOURCE ARGS…` run in `dir`, whatever it announces (a refused
/// save announces no meta).
pub(crate) fn save_output(dir: &Path, source: &str, args: &[&str]) -> Output {
    image_transmit(dir)
        .args(["save", "--from", source])
        .args(args)
        .output()
        .unwrap()
}

/// `image-transmit save --from SOURCE ARGS…` run in `dir`; the output and the meta written,
/// which the save must have announced.
#[track_caller]
pub(crate) fn save(dir: &Path, source: &str, args: &[&str]) -> (Output, PathBuf) {
    let output = save_output(dir, source, args);
    let meta = announced_meta(dir, &output);
    (output, meta)
}

/// `image-transmit upload --to TARGET META ARGS…`.
pub(crate) fn upload(target: &str, meta: &Path, args: &[&str]) -> Output {
    image_transmit(workdir().path())
        .args(["upload", "--to", target])
        .arg(meta)
        .args(args)
        .output()
        .unwrap()
}

/// `image-transmit verify META`.
pub(crate) fn verify(meta: &Path) -> Output {
    image_transmit(workdir().path())
        .arg("verify")
        .arg(meta)
        .output()
        .unwrap()
}

/// `repository:tag` as an image-list line.
pub(crate) fn line(image: &PushedImage) -> String {
    format!("{}:{}", image.repository, image.tag)
}

// ---------------------------------------------------------------------------------------------
// Tar streams, read byte by byte: the checks must not share the product's tar code.
// ---------------------------------------------------------------------------------------------

pub(crate) const BLOCK: usize = 512;

/// One entry of a tar stream: its name, type flag, and where its data is.
#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    pub(crate) name: String,
    pub(crate) typeflag: u8,
    /// Where the entry's data starts.
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

impl TarEntry {
    /// The entry's data within `bytes`, the stream it was read from.
    pub(crate) fn data<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.offset as usize..(self.offset + self.size) as usize]
    }
}

/// `size` rounded up to whole tar blocks.
pub(crate) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn octal(field: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(field);
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    u64::from_str_radix(digits, 8).unwrap_or_else(|_| panic!("bad octal field {text:?}"))
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).expect("a UTF-8 name")
}

/// The `path` record of a PAX extended header, if it has one.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    let mut path = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let length: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = std::str::from_utf8(&rest[space + 1..length - 1]).ok()?;
        if let Some(value) = record.strip_prefix("path=") {
            path = Some(value.to_owned());
        }
        rest = &rest[length..];
    }
    path
}

/// Every header of a tar stream as an entry of its own, as plain ustar sees it: PAX and GNU
/// extension headers are entries too (with their type flags), not folded into the next one.
/// Panics unless every header's checksum is right, every entry is complete, and the stream
/// ends with exactly the two zero blocks of the end marker: so a stream with a half-written or
/// rolled-back-badly entry cannot pass.
#[track_caller]
pub(crate) fn tar_headers(bytes: &[u8], label: &str) -> Vec<TarEntry> {
    let mut entries = Vec::new();
    let mut position = 0usize;
    loop {
        assert!(
            position + 2 * BLOCK <= bytes.len(),
            "{label}: ends at {} without the end-of-archive marker (entry starting at {position})",
            bytes.len()
        );
        let header = &bytes[position..position + BLOCK];
        if header.iter().all(|&b| b == 0) {
            assert!(
                bytes[position..].iter().all(|&b| b == 0) && bytes.len() == position + 2 * BLOCK,
                "{label}: {} bytes after the end-of-archive marker at {position}",
                bytes.len() - position - 2 * BLOCK
            );
            return entries;
        }
        let stored = octal(&header[148..156]);
        let computed: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(
            stored, computed,
            "{label}: bad header checksum at {position}"
        );
        let mut name = c_string(&header[..100]);
        let prefix = c_string(&header[345..500]);
        if &header[257..262] == b"ustar" && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let size = octal(&header[124..136]);
        let offset = (position + BLOCK) as u64;
        assert!(
            offset + size <= bytes.len() as u64,
            "{label}: entry at {position} ({size} bytes) is cut at {}",
            bytes.len()
        );
        entries.push(TarEntry {
            name,
            typeflag: header[156],
            offset,
            size,
        });
        position = (offset + padded(size)) as usize;
    }
}

/// The entries of a tar stream with PAX `path` records and GNU long names followed (and PAX
/// global headers skipped): each extension header names the entry after it instead of being
/// an entry itself. Checks the stream as [`tar_headers`] does, and that no long name is left
/// over for no entry.
#[track_caller]
pub(crate) fn tar_entries(bytes: &[u8], label: &str) -> Vec<TarEntry> {
    let mut entries = Vec::new();
    let mut long_name: Option<String> = None;
    for header in tar_headers(bytes, label) {
        let data = header.data(bytes);
        match header.typeflag {
            b'x' => long_name = pax_path(data).or(long_name),
            b'L' => long_name = Some(c_string(data)),
            b'g' => {}
            _ => entries.push(TarEntry {
                name: long_name.take().unwrap_or(header.name),
                ..header
            }),
        }
    }
    assert!(long_name.is_none(), "{label}: a long name for no entry");
    entries
}

/// `team/appN:latest` → the digest an upload must reproduce: the sha256 of the manifest text
/// the meta holds, which is what the source served.
pub(crate) fn source_digests(meta: &Meta) -> BTreeMap<String, String> {
    meta.manifests
        .iter()
        .map(|(key, text)| (image_of_key(key), sha256_digest(text.as_bytes())))
        .collect()
}

/// Every image is served with its digest, and skopeo reads it back whole.
#[track_caller]
pub(crate) fn assert_served(target: &TestRegistry, expected: &BTreeMap<String, String>) {
    assert!(!expected.is_empty());
    for (image, digest) in expected {
        let (repository, tag) = image.rsplit_once(':').unwrap();
        assert_eq!(
            served_digest(target, repository, tag).as_deref(),
            Some(digest.as_str()),
            "{image}"
        );
        skopeo_copy_to_oci_dir(target, repository, tag, &workdir().path().join("oci"))
            .unwrap_or_else(|e| panic!("skopeo cannot read {image} back: {e}"));
    }
}
