//! The offline check of a bundle, for the jump host before an upload: data files present with
//! their sizes and checksums, every stored blob matching its digest, every manifest's blobs
//! either stored or left to a base. Reads everything once; reports every fault, not the first.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use registry::manifest::{self, ParsedManifest};
use registry::{Digest, DigestHasher};

use crate::bundle::compress::{needs_unpacking, unpack};
use crate::bundle::meta::{BundleMeta, Compressor, bundle_dir};
use crate::bundle::parts::{
    PartError, check_parts, index_archive_part, index_bundle, index_part, open_entry,
};
use crate::bundle::squashfs::{self, RewrittenImage, SquashfsError};
use crate::error::{Error, Result};

/// One fault found.
#[derive(Debug)]
pub enum Finding {
    /// A data file is missing, has the wrong size, or is not a sound tar stream.
    Part(PartError),
    /// A data file's sha256 differs from the one recorded.
    PartDigest {
        file: String,
        expected: String,
        actual: String,
    },
    /// A stored blob or manifest does not match its digest; `images` use it.
    BlobDigest {
        file: String,
        digest: Digest,
        actual: Digest,
        images: Vec<String>,
    },
    /// A manifest needs a blob that is neither stored nor left to a base.
    BlobMissing { image: String, digest: Digest },
    /// A manifest needs a blob that is not in the intact data files, while some data file is
    /// missing or damaged (reported above): the blob may have been there.
    BlobUnreadable { image: String, digest: Digest },
    /// A manifest cannot be read.
    BadManifest {
        image: String,
        error: registry::Error,
    },
    /// An index names a child manifest the bundle does not hold.
    ChildManifestMissing { image: String, digest: Digest },
    /// A child manifest's text does not hash to the digest its index names: upload would
    /// refuse it, and a registry would store something else under that name.
    ChildManifestDigest {
        image: String,
        digest: Digest,
        actual: Digest,
    },
    /// An index whose child is itself an index, which no registry serves as one image.
    NestedIndex { image: String },
    /// A squashfs bundle cannot be turned back into blobs.
    Squashfs(SquashfsError),
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub parts: usize,
    pub blobs: usize,
    pub images: usize,
    pub findings: Vec<Finding>,
    /// Images of a squashfs bundle whose manifest digests change on the way out.
    pub rewritten: Vec<RewrittenImage>,
    /// An incremental bundle: how many blobs it leaves to its bases.
    pub left_to_bases: usize,
    /// Its base bundles (meta file names), each with whether it sits beside it.
    pub bases: Vec<(String, bool)>,
}

const CHUNK: usize = 256 << 10;

fn hash_reader(mut reader: impl Read, path: &Path) -> Result<Digest> {
    let mut hasher = DigestHasher::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = reader.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..read]);
    }
}

/// Checks the bundle whose meta is at `meta_path`. An unreadable meta is an error; everything
/// else is a finding.
pub fn verify_bundle(meta_path: &Path) -> Result<VerifyReport> {
    let meta = BundleMeta::read(meta_path)?;
    let directory = bundle_dir(meta_path);
    let mut report = VerifyReport {
        parts: meta.datafiles.len(),
        images: meta.manifests.len(),
        ..VerifyReport::default()
    };
    let assumed_blobs = meta.blobs_assumed();
    report.left_to_bases = assumed_blobs.len();
    let mut bases: Vec<String> = assumed_blobs
        .iter()
        .flat_map(|assumed| assumed.bases.iter().cloned())
        .collect();
    bases.sort();
    bases.dedup();
    report.bases = bases
        .into_iter()
        .map(|name| {
            let beside = directory.join(&name).is_file();
            (name, beside)
        })
        .collect();
    // Missing or damaged data files are reported, and the rest is still checked: the operator
    // sees every fault at once.
    let mut meta = meta;
    let mut broken = HashSet::new();
    if let Err(problems) = check_parts(&meta, &directory) {
        for problem in problems {
            broken.insert(problem.file().to_string());
            report.findings.push(Finding::Part(problem));
        }
        // Squashfs and compressed bundles are read whole: nothing more to check there.
        if meta.compressor != Compressor::Tar || meta.oci_archive {
            return Ok(report);
        }
        meta.datafiles.retain(|file, _| !broken.contains(file));
        meta.datafile_sha256
            .retain(|file, _| !broken.contains(file));
        meta.entries
            .retain(|_, entry| !broken.contains(&entry.file));
    }
    for (file, expected) in &meta.datafile_sha256 {
        let path = directory.join(file);
        let opened = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let actual = hash_reader(opened, &path)?;
        if actual.hex() != expected {
            report.findings.push(Finding::PartDigest {
                file: file.clone(),
                expected: expected.clone(),
                actual: actual.hex().to_string(),
            });
        }
    }
    // The rest reads tar entries: a compressed bundle is checked on an unpacked copy, a
    // squashfs bundle on the tar bundle made from it.
    let mut unpacked = None;
    let (meta, directory) = if meta.compressor == Compressor::Squashfs {
        let converted = match squashfs::convert(&meta, meta_path) {
            Ok(converted) => converted,
            Err(Error::Squashfs(problem)) => {
                report.findings.push(Finding::Squashfs(*problem));
                return Ok(report);
            }
            Err(error) => return Err(error),
        };
        let scratch_directory = converted.scratch.directory.clone();
        report.rewritten = converted.rewritten;
        unpacked = Some(converted.scratch);
        (converted.meta, scratch_directory)
    } else if needs_unpacking(&meta, &directory) {
        let (plain, scratch) = match unpack(&meta, &directory) {
            Ok(unpacked) => unpacked,
            Err(Error::Part(problem)) => {
                report.findings.push(Finding::Part(problem));
                return Ok(report);
            }
            Err(error) => return Err(error),
        };
        let scratch_directory = scratch.directory.clone();
        // Kept until the checks are done; dropping it removes the copy.
        unpacked = Some(scratch);
        (plain, scratch_directory)
    } else {
        (meta, directory)
    };
    // Our metas locate entries without a scan, but a sound bundle holds nothing else: every
    // header is read, so a hostile name or a link is found whatever the table says.
    for file in meta.datafiles.keys() {
        let indexed = if meta.oci_archive {
            index_archive_part(&directory.join(file), file)
        } else {
            index_part(&directory.join(file), file)
        };
        if let Err(problem) = indexed {
            report.findings.push(Finding::Part(problem));
        }
    }
    let index = match index_bundle(&meta, &directory) {
        Ok(index) => index,
        Err(problem) => {
            report.findings.push(Finding::Part(problem));
            return Ok(report);
        }
    };
    // Which images use each blob, to tie a damaged blob to what it breaks.
    let mut needed = Vec::new();
    for (key, text) in &meta.manifests {
        needed.extend(manifest_blobs(&meta, key, text, &mut report.findings));
    }
    let users = |digest: &Digest| -> Vec<String> {
        let mut images: Vec<String> = needed
            .iter()
            .filter(|(_, blob)| blob == digest)
            .map(|(image, _)| image.clone())
            .collect();
        images.dedup();
        images
    };
    let mut stored = HashSet::new();
    for (hex, _, location) in index.iter() {
        let Ok(digest) = Digest::from_hex(hex) else {
            continue;
        };
        let path = directory.join(&location.file);
        let entry = open_entry(&directory, location).map_err(|e| Error::io(&path, e))?;
        let actual = hash_reader(entry, &path)?;
        report.blobs += 1;
        if actual != digest {
            report.findings.push(Finding::BlobDigest {
                file: location.file.clone(),
                images: users(&digest),
                digest: digest.clone(),
                actual,
            });
        }
        stored.insert(digest);
    }
    // From the meta read (a squashfs bundle's names its bases' new digests).
    let assumed: HashSet<Digest> = meta.blobs_assumed().into_iter().map(|a| a.digest).collect();
    for (image, blob) in needed {
        if stored.contains(&blob) || assumed.contains(&blob) {
            continue;
        }
        report.findings.push(if broken.is_empty() {
            Finding::BlobMissing {
                image,
                digest: blob,
            }
        } else {
            Finding::BlobUnreadable {
                image,
                digest: blob,
            }
        });
    }
    drop(unpacked);
    Ok(report)
}

/// The blobs a top-level manifest needs, its children's included.
fn manifest_blobs(
    meta: &BundleMeta,
    key: &str,
    text: &str,
    findings: &mut Vec<Finding>,
) -> Vec<(String, Digest)> {
    let parsed = match meta
        .manifest_media_type(key, text)
        .and_then(|media_type| manifest::parse(&media_type, text.as_bytes(), key))
    {
        Ok(parsed) => parsed,
        Err(error) => {
            findings.push(Finding::BadManifest {
                image: key.to_string(),
                error,
            });
            return Vec::new();
        }
    };
    let mut blobs = Vec::new();
    match parsed {
        ParsedManifest::Image(image) => {
            blobs.extend(image.blobs().map(|b| (key.to_string(), b.digest.clone())));
        }
        ParsedManifest::Index(index) => {
            for child in index.manifests {
                let Some(child_text) = meta.child_manifests.get(child.digest.as_str()) else {
                    findings.push(Finding::ChildManifestMissing {
                        image: key.to_string(),
                        digest: child.digest.clone(),
                    });
                    continue;
                };
                let actual = Digest::of(child_text.as_bytes());
                if actual != child.digest {
                    findings.push(Finding::ChildManifestDigest {
                        image: key.to_string(),
                        digest: child.digest.clone(),
                        actual,
                    });
                    continue;
                }
                let parsed = meta
                    .manifest_media_type(child.digest.as_str(), child_text)
                    .and_then(|media_type| {
                        manifest::parse(&media_type, child_text.as_bytes(), key)
                    });
                match parsed {
                    Ok(ParsedManifest::Image(image)) => {
                        blobs.extend(image.blobs().map(|b| (key.to_string(), b.digest.clone())));
                    }
                    Ok(ParsedManifest::Index(_)) => findings.push(Finding::NestedIndex {
                        image: key.to_string(),
                    }),
                    Err(error) => findings.push(Finding::BadManifest {
                        image: key.to_string(),
                        error,
                    }),
                }
            }
        }
    }
    blobs
}
