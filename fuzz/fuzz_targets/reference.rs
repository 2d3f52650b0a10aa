//! Image references (`host:5000/ns/repo:tag@sha256:…`), as image lists, cfg.yaml, bundle keys
//! and the command line write them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::reference::{self, Reference, Target};

fuzz_target!(|text: &str| {
    let (host, path) = reference::split_host(text);
    if let Some(host) = host {
        let _ = reference::check_host(host);
    }
    let _ = reference::check_repository(path);
    let _ = reference::check_tag(text);
    let _ = reference::is_docker_hub(text);

    let parsed = match text.parse::<Reference>() {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    // Reports, bundle keys and rewritten lists print a reference and read it again later: the
    // printed form must name the same image.
    let shown = parsed.to_string();
    match shown.parse::<Reference>() {
        Ok(again) => assert_eq!(again, parsed, "{text:?} printed as {shown:?}"),
        Err(error) => panic!("{text:?} printed as {shown:?}, which does not parse: {error}"),
    }
    // A rename's new name keeps the source's digest when it names no tag of its own.
    if let Target::Digest(digest) = &parsed.target {
        let _ = Reference::parse_or(text, Target::Digest(digest.clone()));
    }
});
