//! Entry points for the fuzz targets (fuzz/): each feeds arbitrary input to one parser of
//! this crate that reads what a user or a peer wrote. Not part of the program's interface.

use std::path::Path;

/// Parses `text` as a cfg.yaml file and renders what the user would be shown: the error, or
/// the unknown keys warned about. Any outcome but a panic is fine.
pub fn cfg_yaml(text: &str) {
    match crate::config::Config::parse(text, Path::new("cfg.yaml")) {
        Ok(loaded) => {
            let _ = loaded.unknown_keys.join(", ");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}
