//! The `*_meta.yaml` of an offline bundle: parsed and validated as upload, verify, load and
//! the web UI read it, then what they compute from a meta that passed validation.
#![no_main]

use std::path::Path;

use engine::bundle::meta::BundleMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let path = Path::new("data/img_full_202611230708_meta.yaml");
    let meta = match BundleMeta::parse(text, path) {
        Ok(meta) => meta,
        Err(error) => {
            // The message names the file, line and what is wrong: shown to the user as is.
            let _ = error.to_string();
            return;
        }
    };
    let _ = meta.compressor.ensure_supported(path);
    let _ = meta.data_file_paths(path);
    let _ = meta.manifest_hexes();
    let _ = meta.blobs_carried().count();
    let _ = meta.blobs_assumed();
    let _ = meta.referenced_blobs();
    for (key, manifest) in &meta.manifests {
        let _ = meta.image_size(key);
        let _ = meta.manifest_media_type(key, manifest);
    }
    for (digest, manifest) in &meta.child_manifests {
        let _ = meta.manifest_media_type(digest, manifest);
    }
    // An incremental save writes metas built from read ones; the writer checks its own output
    // and may refuse, but must not panic.
    let _ = meta.to_yaml();
});
