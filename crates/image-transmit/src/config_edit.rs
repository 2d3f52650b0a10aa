//! Adds a registry to cfg.yaml the way a person would: a new item at the end of the `source:` or
//! `target:` list, every other line (comments, keys this version does not know, the order of
//! things, CRLF line ends) left exactly as it was. The web UI's "Keep" writes through this.
//!
//! A YAML library would re-serialise the whole file and lose its comments, which in the
//! original's sample cfg.yaml are the documentation. The edit is checked by parsing the result:
//! if the file no longer reads as a configuration holding the new entry, nothing is written.

use std::io::Write;
use std::path::Path;

use rust_i18n::t;

use crate::config::{Config, RegistryEntry, Side};

/// Why an entry could not be added, in the user's language.
#[derive(Debug)]
pub(crate) struct EditError(pub(crate) String);

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` with `entry` appended to its `side` list.
pub(crate) fn add_registry(
    text: &str,
    side: Side,
    entry: &RegistryEntry,
) -> Result<String, EditError> {
    let key = side_key(side);
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<&str> = text.lines().collect();
    let item_lines = |indent: &str| -> Vec<String> { render_entry(entry, indent) };

    let header = lines
        .iter()
        .position(|line| top_level_key(line) == Some(key));
    let edited: Vec<String> = match header {
        None => {
            // No list yet: a new one at the end, after a blank line when the file has content.
            while lines.last().is_some_and(|line| line.trim().is_empty()) {
                lines.pop();
            }
            let mut out: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
            if !out.is_empty() {
                out.push(String::new());
            }
            out.push(format!("{key}:"));
            out.extend(item_lines(""));
            out
        }
        Some(header) => {
            let value = value_after_key(lines[header]);
            let mut out: Vec<String> = Vec::with_capacity(lines.len() + 8);
            if !value.is_empty() {
                // `target: []` or `target: ~` is an empty list that can become a block list;
                // any other inline value is a flow list we will not rewrite by hand.
                if matches!(value, "[]" | "~" | "null" | "Null" | "NULL") {
                    out.extend(lines[..header].iter().map(|line| line.to_string()));
                    out.push(format!("{key}:"));
                    out.extend(item_lines(""));
                    out.extend(lines[header + 1..].iter().map(|line| line.to_string()));
                    return checked(out.join(newline) + newline, side, entry);
                }
                return Err(EditError(t!("ui.config_flow_list", key = key).to_string()));
            }
            let end = block_end(&lines, header);
            let indent = lines[header + 1..end]
                .iter()
                .find_map(|line| {
                    let trimmed = line.trim_start();
                    (trimmed.starts_with("- ") || trimmed == "-")
                        .then(|| &line[..line.len() - trimmed.len()])
                })
                .unwrap_or("");
            out.extend(lines[..end].iter().map(|line| line.to_string()));
            out.extend(item_lines(indent));
            out.extend(lines[end..].iter().map(|line| line.to_string()));
            out
        }
    };
    checked(edited.join(newline) + newline, side, entry)
}

/// The edited text, if it still reads as a configuration whose list holds the new entry.
fn checked(text: String, side: Side, entry: &RegistryEntry) -> Result<String, EditError> {
    let loaded = Config::parse(&text, Path::new("cfg.yaml"))
        .map_err(|error| EditError(error.to_string()))?;
    let list = match side {
        Side::Source => &loaded.config.source,
        Side::Target => &loaded.config.target,
    };
    if list.iter().any(|found| found == entry) {
        Ok(text)
    } else {
        Err(EditError(
            t!("ui.config_not_written", name = entry.name).to_string(),
        ))
    }
}

fn side_key(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Target => "target",
    }
}

/// The key of a line that starts a top-level mapping entry (no indentation), if it is one.
fn top_level_key(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '#', '-']) {
        return None;
    }
    let (key, _) = line.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty()).then_some(key)
}

/// What follows `key:` on its line, without a trailing comment.
fn value_after_key(line: &str) -> &str {
    let (_, value) = line.split_once(':').unwrap_or((line, ""));
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None if value.trim_start().starts_with('#') => "",
        None => value,
    };
    value.trim()
}

/// The line after the last line of the block that starts at `header`: the next top-level key
/// (or document marker) ends it, and the blank lines and column-0 comments just before that key
/// belong to the key, as in the original's sample, where each list has a comment above it.
fn block_end(lines: &[&str], header: usize) -> usize {
    let mut next = lines.len();
    for (index, line) in lines.iter().enumerate().skip(header + 1) {
        if top_level_key(line).is_some() || line.starts_with("---") || line.starts_with("...") {
            next = index;
            break;
        }
    }
    let mut end = next;
    while end > header + 1 {
        let line = lines[end - 1];
        if line.trim().is_empty() || line.starts_with('#') {
            end -= 1;
        } else {
            break;
        }
    }
    end
}

/// An entry as the original's sample writes one: `name` first, strings double-quoted so that no
/// password or address can be misread as YAML.
fn render_entry(entry: &RegistryEntry, indent: &str) -> Vec<String> {
    let mut fields: Vec<(&str, String)> = vec![
        ("name", quoted(&entry.name)),
        ("registry", quoted(&entry.registry)),
    ];
    let optional = [
        ("user", &entry.user),
        ("password", &entry.password),
        ("repository", &entry.repository),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            fields.push((key, quoted(value)));
        }
    }
    if let Some(cacert) = &entry.cacert {
        fields.push(("cacert", quoted(&cacert.display().to_string())));
    }
    if entry.skiptlsverify {
        fields.push(("skiptlsverify", "true".to_string()));
    }
    if entry.insecure {
        fields.push(("insecure", "true".to_string()));
    }
    fields
        .into_iter()
        .enumerate()
        .map(|(index, (key, value))| {
            let lead = if index == 0 { "- " } else { "  " };
            format!("{indent}{lead}{key}: {value}")
        })
        .collect()
}

/// A YAML double-quoted string: backslash, quote and control characters escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `text` to `path` in place of what was there, atomically (a file beside it, then a
/// rename), readable by its owner only on unix: it holds passwords. A UTF-8 byte-order mark the
/// file had is kept, for the Windows editors that look for one.
pub(crate) fn write_config(path: &Path, text: &str, with_bom: bool) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.new", std::process::id()));
    // A file left by a crash may have other permissions; the mode applies only to a new one.
    let _ = fs_err::remove_file(&temporary);
    let written = (|| {
        let mut options = fs_err::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        if with_bom {
            file.write_all(b"\xEF\xBB\xBF")?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs_err::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs_err::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, registry: &str) -> RegistryEntry {
        RegistryEntry {
            name: name.to_string(),
            registry: registry.to_string(),
            ..RegistryEntry::default()
        }
    }

    const SAMPLE: &str = include_str!("../../../packaging/cfg.yaml");

    #[test]
    fn a_target_goes_at_the_end_of_the_target_list_and_nothing_else_changes() {
        let mut customer = entry("site-b", "http://10.0.0.11:5000");
        customer.user = Some("ops".into());
        customer.password = Some("p\"a:ss #1".into());
        let edited = add_registry(SAMPLE, Side::Target, &customer).unwrap();
        let added: Vec<&str> = edited
            .lines()
            .filter(|line| !SAMPLE.lines().any(|old| old == *line))
            .collect();
        assert_eq!(
            added,
            [
                "- name: \"site-b\"",
                "  registry: \"http://10.0.0.11:5000\"",
                "  user: \"ops\"",
                "  password: \"p\\\"a:ss #1\"",
            ]
        );
        // Every line of the sample is still there, in the same order.
        let kept: Vec<&str> = edited
            .lines()
            .filter(|line| !added.contains(line))
            .collect();
        assert_eq!(kept, SAMPLE.lines().collect::<Vec<_>>());
        // The new item comes after the commented-out keys of the last target, before maxconn.
        let position = |needle: &str| edited.find(needle).unwrap();
        assert!(position("#skiptlsverify: true") < position("site-b"));
        assert!(position("site-b") < position("#maxconn"));
        let loaded = Config::parse(&edited, Path::new("cfg.yaml")).unwrap();
        assert_eq!(loaded.config.target.len(), 2);
        assert_eq!(loaded.config.target[1], customer);
        assert!(loaded.unknown_keys.is_empty());
    }

    #[test]
    fn a_source_goes_before_the_comment_that_introduces_the_targets() {
        let edited =
            add_registry(SAMPLE, Side::Source, &entry("mirror", "https://m.example")).unwrap();
        let position = |needle: &str| edited.find(needle).unwrap();
        assert!(position("mirror") < position("# 目标镜像仓库"));
        let loaded = Config::parse(&edited, Path::new("cfg.yaml")).unwrap();
        assert_eq!(loaded.config.source[1].name, "mirror");
    }

    #[test]
    fn indented_items_crlf_and_unknown_keys_are_kept() {
        let text = "# mine\r\nsource:\r\n  - name: a\r\n    registry: http://a:5000\r\nextra: kept # unknown\r\n";
        let edited = add_registry(text, Side::Source, &entry("b", "http://b:5000")).unwrap();
        assert_eq!(
            edited,
            "# mine\r\nsource:\r\n  - name: a\r\n    registry: http://a:5000\r\n  - name: \"b\"\r\n    registry: \"http://b:5000\"\r\nextra: kept # unknown\r\n"
        );
    }

    #[test]
    fn a_missing_or_empty_list_is_created() {
        let edited = add_registry("", Side::Target, &entry("t", "http://t:5000")).unwrap();
        assert_eq!(
            edited,
            "target:\n- name: \"t\"\n  registry: \"http://t:5000\"\n"
        );
        let edited = add_registry("maxconn: 3\n\n", Side::Source, &entry("s", "http://s")).unwrap();
        assert_eq!(
            edited,
            "maxconn: 3\n\nsource:\n- name: \"s\"\n  registry: \"http://s\"\n"
        );
        let edited = add_registry(
            "target: []  # none yet\nretries: 1\n",
            Side::Target,
            &entry("t", "http://t"),
        )
        .unwrap();
        assert_eq!(
            edited,
            "target:\n- name: \"t\"\n  registry: \"http://t\"\nretries: 1\n"
        );
    }

    #[test]
    fn a_flow_list_is_refused_rather_than_rewritten() {
        let text = "target: [{name: a, registry: http://a}]\n";
        assert!(add_registry(text, Side::Target, &entry("b", "http://b")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_written_file_is_private_and_keeps_a_byte_order_mark() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("cfg.yaml");
        fs_err::write(&path, "source:\n").unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_config(&path, "target:\n", true).unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"\xEF\xBB\xBFtarget:\n");
        let mode = fs_err::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let left: Vec<_> = fs_err::read_dir(scratch.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
