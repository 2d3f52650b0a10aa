//! The `WWW-Authenticate` header of a registry's 401 (`Bearer realm="…",service="…"`, `Basic`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    let _ = registry::fuzzing::www_authenticate(header);
});
