//! Entry points for the fuzz targets (fuzz/): each feeds arbitrary input to one parser of
//! this crate that reads what a user or a peer wrote. Not part of the program's interface.

use std::path::Path;

/// Parses `text` as a cfg.yaml file; any outcome but a panic is fine.
pub fn cfg_yaml(text: &str) {
    let _ = crate::config::Config::parse(text, Path::new("cfg.yaml"));
}
