//! Chooses the user's language the way the original tool did, so that the same `cfg.yaml` and
//! environment give the same language, while accepting the POSIX forms (`zh_CN.UTF-8`) that the
//! original silently turned into English.
//!
//! Messages live in `locales/en.yml` and `locales/zh-CN.yml`; the `i18n!` call in `main.rs` compiles
//! them in, and `rust_i18n::t!` looks them up in the locale set here.

/// Locale name of the English catalog (also the fallback for missing keys).
pub(crate) const ENGLISH: &str = "en";
/// Locale name of the Simplified Chinese catalog.
pub(crate) const CHINESE: &str = "zh-CN";

/// Picks the catalog: `--lang` beats cfg `lang`, which beats env `lang`, which beats `LANG`.
///
/// A blank value counts as unset so that `lang:` with nothing after it, or an exported empty
/// variable, does not hide the next source; the first non-blank value decides, even when it
/// names a language without a catalog (that user asked for something, and English is the
/// closest we have to "not Chinese").
pub(crate) fn pick_language(
    flag: Option<&str>,
    cfg: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> &'static str {
    let from_env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let chosen = [flag.map(str::to_owned), cfg.map(str::to_owned)]
        .into_iter()
        .flatten()
        .find(|value| !value.trim().is_empty())
        .or_else(|| from_env("lang"))
        .or_else(|| from_env("LANG"));
    chosen.as_deref().map_or(ENGLISH, normalize)
}

/// Maps a language tag or POSIX locale to a catalog name.
///
/// Any Chinese variant gets the Simplified catalog: the original matched every `zh*` tag to its
/// single Chinese translation, and Simplified is still closer for a Traditional reader than English.
pub(crate) fn normalize(value: &str) -> &'static str {
    let tag = value.trim();
    // POSIX locales carry an encoding (`.UTF-8`) and a modifier (`@euro`) that say nothing about language.
    let tag = tag.split(['.', '@']).next().unwrap_or_default();
    let language = tag.split(['_', '-']).next().unwrap_or_default();
    if language.eq_ignore_ascii_case("zh") {
        CHINESE
    } else {
        ENGLISH
    }
}

/// Chooses the language from the real environment and makes it the current locale for `t!`.
pub(crate) fn apply_language(flag: Option<&str>, cfg: Option<&str>) -> &'static str {
    let language = pick_language(flag, cfg, |name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "LANG").then(system_language).flatten())
    });
    rust_i18n::set_locale(language);
    language
}

/// Windows sets no `LANG`: the user's display language stands in for it, as the original read
/// it from the system there (`zh-CN` on a Chinese Windows).
#[cfg(windows)]
fn system_language() -> Option<String> {
    sys_locale::get_locale()
}

#[cfg(not(windows))]
fn system_language() -> Option<String> {
    None
}

/// The catalog `t!` currently uses, as one of [`ENGLISH`] or [`CHINESE`].
pub(crate) fn current_language() -> &'static str {
    normalize(&rust_i18n::locale())
}

/// Serialises the tests that change or depend on the process-wide locale; cargo runs tests on
/// several threads and `rust_i18n::set_locale` is global.
#[cfg(test)]
pub(crate) static LOCALE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn chinese_spellings_select_the_chinese_catalog() {
        for value in [
            "zh_CN",
            "zh_CN.UTF-8",
            "zh-CN",
            "zh",
            "ZH_cn.utf8",
            "zh_TW",
            "zh-Hans-CN",
            " zh_CN ",
        ] {
            assert_eq!(normalize(value), CHINESE, "{value}");
        }
    }

    #[test]
    fn everything_else_is_english() {
        for value in [
            "en_US",
            "en_US.UTF-8",
            "C",
            "POSIX",
            "de_DE",
            "",
            "z",
            "zhx",
            "fr-zh",
        ] {
            assert_eq!(normalize(value), ENGLISH, "{value}");
        }
    }

    #[test]
    fn flag_beats_config_beats_env() {
        let env = env_of(&[("lang", "zh_CN"), ("LANG", "zh_CN.UTF-8")]);
        assert_eq!(pick_language(Some("en_US"), Some("zh_CN"), &env), ENGLISH);
        assert_eq!(pick_language(None, Some("en_US"), &env), ENGLISH);
        assert_eq!(pick_language(Some("zh"), Some("en_US"), no_env), CHINESE);
        assert_eq!(pick_language(None, None, &env), CHINESE);
    }

    #[test]
    fn lowercase_lang_variable_beats_posix_lang() {
        let env = env_of(&[("lang", "en_US"), ("LANG", "zh_CN.UTF-8")]);
        assert_eq!(pick_language(None, None, env), ENGLISH);
        let env = env_of(&[("LANG", "zh_CN.UTF-8")]);
        assert_eq!(pick_language(None, None, env), CHINESE);
    }

    #[test]
    fn blank_values_fall_through() {
        let env = env_of(&[("lang", " "), ("LANG", "zh_CN.UTF-8")]);
        assert_eq!(pick_language(Some(""), Some("  "), env), CHINESE);
        assert_eq!(pick_language(None, None, no_env), ENGLISH);
    }

    #[test]
    fn apply_language_sets_the_current_locale() {
        let _guard = LOCALE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        assert_eq!(apply_language(Some("zh_CN.UTF-8"), None), CHINESE);
        assert_eq!(current_language(), CHINESE);
        assert_eq!(rust_i18n::t!("app.title"), "镜像传输工具");
        assert_eq!(apply_language(Some("en"), Some("zh")), ENGLISH);
        assert_eq!(current_language(), ENGLISH);
        assert_eq!(rust_i18n::t!("app.title"), "Image Transmit");
    }

    #[test]
    fn explicit_locale_lookup_interpolates() {
        assert_eq!(
            rust_i18n::t!("summary.copied", locale = CHINESE, src = "a:1", dst = "b:1"),
            "已复制 a:1 -> b:1"
        );
        assert_eq!(
            rust_i18n::t!(
                "warning.unknown_config_key",
                locale = ENGLISH,
                key = "target[0].registri"
            ),
            "unknown key in cfg.yaml: target[0].registri"
        );
    }

    fn catalog(file: &str) -> BTreeMap<String, String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(file);
        let text = fs_err::read_to_string(&path).unwrap();
        let mut entries: BTreeMap<String, serde_json::Value> =
            serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert_eq!(
            entries.remove("_version"),
            Some(serde_json::Value::from(1)),
            "{file} must be a _version: 1 catalog"
        );
        entries
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => (key, text),
                other => panic!("{file}: {key} must be a string, found {other}"),
            })
            .collect()
    }

    fn placeholders(text: &str) -> BTreeSet<&str> {
        text.split("%{")
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn catalogs_have_the_same_keys_and_placeholders() {
        let english = catalog("en.yml");
        let chinese = catalog("zh-CN.yml");
        let english_keys: BTreeSet<_> = english.keys().collect();
        let chinese_keys: BTreeSet<_> = chinese.keys().collect();
        assert_eq!(
            english_keys, chinese_keys,
            "en.yml and zh-CN.yml keys differ"
        );
        for (key, text) in &english {
            assert!(!text.trim().is_empty(), "en.yml: {key} is empty");
            assert_eq!(
                placeholders(text),
                placeholders(&chinese[key]),
                "placeholders differ for {key}"
            );
        }
    }

    /// Every key given as a literal to `t!` anywhere in the crate must exist in the catalog, or users
    /// would see the bare key.
    #[test]
    fn every_key_used_in_the_sources_is_in_the_catalog() {
        let english = catalog("en.yml");
        let mut missing = Vec::new();
        let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = pending.pop() {
            for entry in fs_err::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    let text = fs_err::read_to_string(&path).unwrap();
                    for key in literal_keys(&text) {
                        if !english.contains_key(key) {
                            missing.push(format!("{}: {key}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys missing from en.yml: {missing:#?}");
    }

    /// The string literals passed first to `t!`, skipping look-alikes such as `format!(`.
    fn literal_keys(source: &str) -> Vec<&str> {
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        let is_key = |key: &str| !key.is_empty() && key.chars().all(|c| is_ident(c) || c == '.');
        source
            .match_indices("t!(")
            .filter(|(at, _)| !source[..*at].ends_with(is_ident))
            .filter_map(|(at, call)| source[at + call.len()..].trim_start().strip_prefix('"'))
            .filter_map(|literal| literal.split('"').next())
            .filter(|key| is_key(key))
            .collect()
    }

    #[test]
    fn key_scan_sees_only_translation_calls() {
        let source = "t!(\"a.b\", x = 1); rust_i18n::t!(\n  \"c_d\"); format!(\"e.f\"); t!(name)";
        assert_eq!(literal_keys(source), vec!["a.b", "c_d"]);
    }

    #[test]
    fn placeholder_scan_finds_names() {
        assert_eq!(
            placeholders("%{a} and %{b} but not %c or %{unclosed"),
            BTreeSet::from(["a", "b"])
        );
    }
}
