//! What can go wrong with cfg.yaml ([`ConfigError`]), and a malformed file's problem said in
//! the user's words ([`ParseDetail`]). Separate because the messages, in the current language,
//! are their own concern; the other modules only construct these.

use std::fmt;
use std::path::{Path, PathBuf};

use rust_i18n::t;

use super::Side;

/// Config failures; callers branch on them (a missing file is fatal only with `--config`) and
/// `Display` is in the current language.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// `--config` named a file that does not exist.
    NotFound {
        path: PathBuf,
    },
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Malformed YAML or a value of the wrong type.
    Parse {
        path: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        detail: ParseDetail,
    },
    /// Well-formed YAML that still cannot work, such as an entry without `registry`.
    Invalid {
        path: PathBuf,
        detail: String,
    },
    UnknownRegistry {
        side: Side,
        name: String,
        known: Vec<String>,
    },
    InvalidRegistryUrl {
        value: String,
        detail: String,
    },
}

/// What is wrong at a place in cfg.yaml, said in the user's words where the parser's would
/// puzzle them (Notepad users indent with tabs; a value's type is named as YAML names it).
#[derive(Debug)]
pub(crate) enum ParseDetail {
    /// A line indented with a tab, which YAML does not allow.
    TabIndent,
    /// A key given twice in the same block.
    DuplicateKey(String),
    /// A count or size that is not a whole number.
    NotANumber,
    /// A list or block where a single value belongs.
    NotText,
    /// Anything else: the parser's own words.
    Other(String),
}

impl ParseDetail {
    fn of(message: &str) -> ParseDetail {
        if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
            let key = rest.split(',').next().unwrap_or(rest).trim();
            return ParseDetail::DuplicateKey(key.to_string());
        }
        if message.starts_with("invalid u")
            || message.starts_with("invalid i")
            || message.contains("invalid digit")
        {
            return ParseDetail::NotANumber;
        }
        if message.starts_with("expected string scalar") {
            return ParseDetail::NotText;
        }
        if message.contains("found a tab") {
            return ParseDetail::TabIndent;
        }
        ParseDetail::Other(message.to_string())
    }
}

impl fmt::Display for ParseDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ParseDetail::TabIndent => t!("config.tab_indent"),
            ParseDetail::DuplicateKey(key) => t!("config.duplicate_key", key = key),
            ParseDetail::NotANumber => t!("config.not_a_number"),
            ParseDetail::NotText => t!("config.not_text"),
            ParseDetail::Other(message) => return f.write_str(message),
        };
        f.write_str(&text)
    }
}

/// The first line indented with a tab (1-based line and column), which YAML refuses; found
/// before parsing because the parser reports it where the previous value ends.
pub(super) fn tab_indented_line(text: &str) -> Option<(u64, u64)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let column = line[..indent].find('\t')?;
        let rest = line[indent..].trim_start();
        // A blank line or a comment may hold anything.
        (!rest.is_empty() && !rest.starts_with('#'))
            .then_some((index as u64 + 1, column as u64 + 1))
    })
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::NotFound { path } => t!("error.config_not_found", path = path.display()),
            Self::Read { path, source } => {
                t!("error.config_read", path = path.display(), detail = source)
            }
            Self::Parse {
                path,
                line,
                column,
                detail,
            } => {
                let position = match (line, column) {
                    (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
                    (Some(line), None) => format!("{}:{line}", path.display()),
                    _ => path.display().to_string(),
                };
                t!("error.config_parse", path = position, detail = detail)
            }
            Self::Invalid { path, detail } => {
                t!(
                    "error.config_invalid",
                    path = path.display(),
                    detail = detail
                )
            }
            Self::UnknownRegistry { side, name, known } => {
                let known = if known.is_empty() {
                    t!("common.none").into_owned()
                } else {
                    known.join(", ")
                };
                match side {
                    Side::Source => t!("error.unknown_source", name = name, known = known),
                    Side::Target => t!("error.unknown_target", name = name, known = known),
                }
            }
            Self::InvalidRegistryUrl { value, detail } => {
                t!("error.invalid_registry_url", value = value, detail = detail)
            }
        };
        f.write_str(&text)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn parse_error(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
    let location = err.location();
    let mut detail = err.without_snippet().to_string();
    // The position goes in front of the message with the file name; saying it twice is noise.
    if let Some(location) = location {
        let suffix = format!(" at line {}, column {}", location.line(), location.column());
        if let Some(message) = detail.strip_suffix(&suffix) {
            detail = message.to_owned();
        }
    }
    ConfigError::Parse {
        path: path.to_path_buf(),
        line: location.map(|location| location.line()),
        column: location.map(|location| location.column()),
        detail: ParseDetail::of(&detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parse, parse_err};

    #[test]
    fn wrong_type_names_file_line_and_column() {
        let err = parse_err("source: []\nmaxconn: lots\n");
        let ConfigError::Parse {
            path, line, column, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(path, Path::new("/etc/it/cfg.yaml"));
        assert_eq!(*line, Some(2));
        assert_eq!(*column, Some(10));
        let message = err.to_string();
        assert!(message.contains("/etc/it/cfg.yaml:2:10: "), "{message}");
        assert!(
            !message.contains("line 2"),
            "location said twice: {message}"
        );
    }

    /// Notepad users indent with tabs: the exact line, and what to do, not the parser's words.
    #[test]
    fn a_tab_is_named_on_its_own_line_with_the_fix() {
        let _guard = crate::i18n::LOCALE_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        rust_i18n::set_locale(crate::i18n::ENGLISH);
        let err =
            parse_err("source:\n- name: nj\n  registry: a\ntarget:\n- name: gz\n\tregistry: b\n");
        let message = err.to_string();
        assert!(message.contains("/etc/it/cfg.yaml:6:1: "), "{message}");
        assert!(message.contains("replace the tab with spaces"), "{message}");
        // Tabs in a comment or after the indentation are not indentation.
        parse("# a\tcomment\nmaxconn: 3\t# three\n");
        let err = parse_err("source:\n- name: a\n  registry: r\nsource: []\n");
        let message = err.to_string();
        assert!(
            message.contains(":4:1: key source is given twice"),
            "{message}"
        );
        assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
        let message = parse_err("maxconn: lots\n").to_string();
        assert!(message.contains("must be a whole number"), "{message}");
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let err = parse_err("source:\n- registry: a\n  user: [unclosed\n");
        let ConfigError::Parse { line, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(line.is_some(), "{err:?}");
        assert!(err.to_string().contains("/etc/it/cfg.yaml:"), "{err}");
    }

    #[test]
    fn negative_count_is_a_type_error() {
        let err = parse_err("retries: -1\n");
        assert!(
            matches!(err, ConfigError::Parse { line: Some(1), .. }),
            "{err:?}"
        );
    }
}
