//! Manifest bytes as a registry or a bundle serves them: parsed as each media type, the media
//! type detected as a response without (or with) a Content-Type would be, and an index
//! filtered to some of its platforms as `platform:` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::Digest;
use registry::manifest::{self, ParsedManifest};

const MEDIA_TYPES: [&str; 7] = [
    manifest::DOCKER_MANIFEST,
    manifest::DOCKER_MANIFEST_LIST,
    manifest::DOCKER_SCHEMA1,
    manifest::DOCKER_SCHEMA1_SIGNED,
    manifest::OCI_MANIFEST,
    manifest::OCI_INDEX,
    "application/vnd.unknown+json",
];

const REFERENCE: &str = "team/app:1";

fuzz_target!(|bytes: &[u8]| {
    for media_type in MEDIA_TYPES {
        match manifest::parse(media_type, bytes, REFERENCE) {
            Ok(ParsedManifest::Image(image)) => {
                for blob in image.blobs() {
                    let _ = blob.platform.as_ref().map(|platform| platform.label());
                }
            }
            Ok(ParsedManifest::Index(index)) => {
                let mut keep: Vec<Digest> = Vec::new();
                for child in &index.manifests {
                    if child.platform.as_ref().map(|platform| platform.label())
                        == Some("linux/amd64".to_string())
                    {
                        keep.push(child.digest.clone());
                    }
                }
                let _ = manifest::filter_index(bytes, &keep, REFERENCE);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
    for header in [
        None,
        Some("application/json; charset=utf-8"),
        Some(manifest::OCI_INDEX),
    ] {
        if let Ok(media_type) = manifest::detect_media_type(header, bytes, REFERENCE) {
            let _ = manifest::is_index(&media_type);
            let _ = manifest::parse(&media_type, bytes, REFERENCE);
        }
    }
});
