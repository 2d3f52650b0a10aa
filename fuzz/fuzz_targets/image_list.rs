//! Image lists (`ns/app:1`, `old:1 -> new:2`, comments, CRLF, a BOM): split into lines, then
//! each line planned onto source and target registries as copy, save and upload do.
#![no_main]

use std::sync::OnceLock;

use engine::plan::{self, ListOptions, RegistryAddress};
use libfuzzer_sys::fuzz_target;

/// The endpoint shapes planning treats differently: none (save's target, upload's source),
/// a plain host with a namespace setting, a path prefix, Docker Hub (`library/`), a port.
fn list_options() -> &'static [ListOptions] {
    static OPTIONS: OnceLock<Vec<ListOptions>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let endpoint =
            |text: &str| Some(text.parse::<RegistryAddress>().expect("a valid endpoint"));
        vec![
            ListOptions::default(),
            ListOptions {
                source: endpoint("http://10.45.80.1"),
                target: endpoint("https://harbor.local/proj/"),
                target_namespace: Some("yyyy".to_string()),
            },
            ListOptions {
                source: endpoint("docker.io"),
                target: endpoint("localhost:5000"),
                target_namespace: Some("/".to_string()),
            },
        ]
    })
}

fuzz_target!(|text: &str| {
    let lines = match plan::parse_list(text) {
        Ok(lines) => lines,
        Err(error) => {
            // The message names every line and character refused: shown to the user as is.
            let _ = error.to_string();
            return;
        }
    };
    for options in list_options() {
        let (pairs, invalid) = plan::plan(&lines, options);
        assert_eq!(pairs.len() + invalid.len(), lines.len(), "a line was lost");
        for pair in &pairs {
            let _ = (pair.source.to_string(), pair.target.to_string());
        }
        for line in &invalid {
            let _ = line.to_string();
        }
    }
});
