//! Reads the original tool's `cfg.yaml`, every key it ever accepted (ORIG and the exyb fork), so
//! that existing deployments keep working unchanged.
//!
//! Two things differ on purpose: a key we do not know is reported as a warning instead of being
//! silently dropped (a misspelt `registri:` used to look like an anonymous registry), and a
//! malformed file fails with its name, line and column instead of a bare YAML message.

//! The file is split by concern: this module holds the settings ([`Config`]) and finds, reads
//! and parses the file; `schema` is the file as written and its defaults, `registries` the
//! `source:`/`target:` entries and how a name or URL argument resolves, `robots` the
//! notification entries, `redacted` how their secrets are hidden, and `error` what goes wrong.

mod error;
mod redacted;
mod registries;
mod robots;
mod schema;

use std::path::{Path, PathBuf};

pub(crate) use error::{ConfigError, ParseDetail};
pub(crate) use registries::{RegistryEntry, Side, without_password};
pub(crate) use robots::{DingTalkRobot, FeishuRobot, WeComRobot, Webhook};

use error::{parse_error, tab_indented_line};
use schema::RawConfig;

/// File name looked up in the working directory, `data/` and beside the executable.
pub(crate) const CONFIG_FILE_NAME: &str = "cfg.yaml";

/// Worker count when `maxconn` is absent or 0. The original used the CPU count, but a registry
/// copy is network-bound and the README always promised 5, so 5 it is.
pub(crate) const DEFAULT_MAXCONN: usize = 5;
/// Extra task passes when `retries` is absent or 0, as in the original.
pub(crate) const DEFAULT_RETRIES: u32 = 2;
/// Seconds a blob transfer may go without moving a byte when `stalltimeout` is absent or 0.
pub(crate) const DEFAULT_STALL_TIMEOUT_SECS: u64 = 60;
/// Watch-mode rescan period in seconds when `interval` is absent or 0.
pub(crate) const DEFAULT_INTERVAL_SECS: u64 = 60;
/// Documented cache eviction age in days.
pub(crate) const DEFAULT_CACHE_KEEPDAYS: u32 = 7;
/// Documented cache eviction size in GiB.
pub(crate) const DEFAULT_CACHE_KEEPSIZE_GIB: u64 = 10;

/// The whole of `cfg.yaml` after defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) source: Vec<RegistryEntry>,
    pub(crate) target: Vec<RegistryEntry>,
    pub(crate) maxconn: usize,
    pub(crate) retries: u32,
    /// Seconds without a byte moving before a transfer is abandoned as stalled (ours).
    pub(crate) stalltimeout: u64,
    /// The job's total bandwidth cap in bytes a second (ours); none when unset.
    pub(crate) limitrate: Option<u64>,
    /// Uploads in chunks of this many bytes, each on a connection of its own (ours); none
    /// when unset.
    pub(crate) chunksize: Option<u64>,
    pub(crate) singlefile: bool,
    pub(crate) dockerfile: bool,
    /// `tar` or `squashfs` in the original CLI; the GUI also knew `gzip`, `zstd`, `xz`, `lz4`.
    pub(crate) compressor: Option<String>,
    /// Upload tuning for squashfs bundles (`stream`, `nocmd`).
    pub(crate) squashfs: Option<String>,
    pub(crate) cache: Option<CacheConfig>,
    pub(crate) lang: Option<String>,
    pub(crate) keeptemp: bool,
    pub(crate) outprefix: Option<String>,
    /// Watch-mode rescan period in seconds.
    pub(crate) interval: u64,
    /// `interval:` given as a cron expression (`"*/10 * * * *"`) instead of seconds.
    pub(crate) interval_cron: Option<String>,
    pub(crate) dingtalk: Vec<DingTalkRobot>,
    pub(crate) wecom: Vec<WeComRobot>,
    pub(crate) feishu: Vec<FeishuRobot>,
    pub(crate) webhook: Vec<Webhook>,
    pub(crate) skiptlsverify: bool,
    /// `os/arch[/variant]` for manifest lists (fork).
    pub(crate) platform: Option<String>,
    /// `oci`, `docker` or `both` (fork).
    pub(crate) outputformat: Option<String>,
    /// Persistent blob store directory (fork).
    pub(crate) localstore: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: Vec::new(),
            target: Vec::new(),
            maxconn: DEFAULT_MAXCONN,
            retries: DEFAULT_RETRIES,
            stalltimeout: DEFAULT_STALL_TIMEOUT_SECS,
            limitrate: None,
            chunksize: None,
            singlefile: false,
            dockerfile: false,
            compressor: None,
            squashfs: None,
            cache: None,
            lang: None,
            keeptemp: false,
            outprefix: None,
            interval: DEFAULT_INTERVAL_SECS,
            interval_cron: None,
            dingtalk: Vec::new(),
            wecom: Vec::new(),
            feishu: Vec::new(),
            webhook: Vec::new(),
            skiptlsverify: false,
            platform: None,
            outputformat: None,
            localstore: None,
        }
    }
}

/// `cache:`; present only when `pathname` is set, as the original turned the cache off otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheConfig {
    pub(crate) pathname: PathBuf,
    pub(crate) keepdays: u32,
    /// `keepsize` (GiB, fractions allowed) in bytes.
    pub(crate) keep_bytes: u64,
}

impl CacheConfig {
    /// The original's documented limits, for a cache named only on the command line.
    pub(crate) fn defaults() -> CacheConfig {
        CacheConfig {
            pathname: PathBuf::from("cache"),
            keepdays: DEFAULT_CACHE_KEEPDAYS,
            keep_bytes: DEFAULT_CACHE_KEEPSIZE_GIB << 30,
        }
    }
}

/// A parsed file with the keys it contained that we do not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadedConfig {
    pub(crate) config: Config,
    /// Paths such as `target[0].registri`, in file order, for the caller to warn about.
    pub(crate) unknown_keys: Vec<String>,
}

impl Config {
    /// Finds the config file: `explicit` (from `--config`, which must exist), else `./cfg.yaml`,
    /// else `./data/cfg.yaml`, else `cfg.yaml` beside the executable.
    ///
    /// `None` when there is none: commands given registry URLs run without a config.
    pub(crate) fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        locate_in(explicit, &cwd, exe_dir.as_deref())
    }

    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = crate::text_file::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses YAML text; `path` only names the file in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
        // An empty or all-comment file was a valid, empty config for the original's yaml.v2.
        let has_content = text
            .lines()
            .map(str::trim)
            .any(|line| !line.is_empty() && !line.starts_with('#') && line != "---");
        if !has_content {
            return Ok(LoadedConfig {
                config: Self::default(),
                unknown_keys: Vec::new(),
            });
        }
        if let Some((line, column)) = tab_indented_line(text) {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(column),
                detail: ParseDetail::TabIndent,
            });
        }
        let mut unknown_keys = Vec::new();
        let raw: RawConfig = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
            serde_ignored::deserialize(deserializer, |ignored| {
                unknown_keys.push(key_path(&ignored));
            })
        })
        .map_err(|err| parse_error(path, &err))?;
        let config = raw.finish().map_err(|detail| ConfigError::Invalid {
            path: path.to_path_buf(),
            detail,
        })?;
        Ok(LoadedConfig {
            config,
            unknown_keys,
        })
    }
}

fn locate_in(
    explicit: Option<&Path>,
    cwd: &Path,
    exe_dir: Option<&Path>,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        let path = cwd.join(path);
        return if path.is_file() {
            Ok(Some(path))
        } else {
            Err(ConfigError::NotFound { path })
        };
    }
    let candidates = [
        Some(cwd.join(CONFIG_FILE_NAME)),
        Some(cwd.join("data").join(CONFIG_FILE_NAME)),
        exe_dir.map(|dir| dir.join(CONFIG_FILE_NAME)),
    ];
    Ok(candidates.into_iter().flatten().find(|path| path.is_file()))
}

/// Renders a serde_ignored path the way a user would point at the key: `target[0].registri`.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => {
            let parent = key_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(text: &str) -> LoadedConfig {
        Config::parse(text, Path::new("cfg.yaml")).unwrap()
    }

    pub(super) fn parse_err(text: &str) -> ConfigError {
        Config::parse(text, Path::new("/etc/it/cfg.yaml")).unwrap_err()
    }

    /// The commented cfg.yaml every download ships, and the same saved by Notepad (CRLF).
    #[test]
    fn the_shipped_sample_is_read_as_written_and_with_crlf() {
        let sample = include_str!("../../../../packaging/cfg.yaml");
        for text in [sample.to_string(), sample.replace('\n', "\r\n")] {
            let loaded = parse(&text);
            assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
            let config = loaded.config;
            assert_eq!(config.source[0].name, "vendor");
            assert_eq!(config.source[0].registry, "https://registry.example.com");
            assert_eq!(config.source[0].user, None);
            assert_eq!(config.target[0].name, "customer");
            assert_eq!(config.target[0].registry, "http://10.0.0.10:5000");
            assert_eq!(config.maxconn, DEFAULT_MAXCONN);
        }
    }

    #[test]
    fn empty_or_comment_only_file_is_the_default_config() {
        assert_eq!(parse("").config, Config::default());
        assert_eq!(parse("# nothing yet\n\n").config, Config::default());
    }

    #[test]
    fn unknown_keys_are_collected_not_fatal() {
        let loaded = parse(
            "maxconn: 3\nmaxcon: 4\ntarget:\n- name: a\n  registry: r\n- name: b\n  registri: x\n  registry: y\ncache:\n  path: c\ndingtalk:\n- tokn: t\nwecom:\n- key: k\n  secret: s\nwebhook:\n- url: u\n  header: {A: b}\n",
        );
        assert_eq!(loaded.config.maxconn, 3);
        assert_eq!(loaded.config.target.len(), 2);
        assert_eq!(
            loaded.unknown_keys,
            vec![
                "maxcon",
                "target[1].registri",
                "cache.path",
                "dingtalk[0].tokn",
                "wecom[0].secret",
                "webhook[0].header"
            ]
        );
    }

    #[test]
    fn unknown_key_with_a_nested_value_is_reported_once() {
        let loaded = parse("gui:\n  width: 3\n  height: [1, 2]\n");
        assert_eq!(loaded.unknown_keys, vec!["gui"]);
    }

    #[test]
    fn locate_order() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("work");
        let exe = dir.path().join("bin");
        fs_err::create_dir_all(cwd.join("data")).unwrap();
        fs_err::create_dir_all(&exe).unwrap();

        assert_eq!(locate_in(None, &cwd, Some(&exe)).unwrap(), None);

        fs_err::write(exe.join(CONFIG_FILE_NAME), "").unwrap();
        assert_eq!(
            locate_in(None, &cwd, Some(&exe)).unwrap(),
            Some(exe.join(CONFIG_FILE_NAME))
        );
        assert_eq!(locate_in(None, &cwd, None).unwrap(), None);

        fs_err::write(cwd.join("data").join(CONFIG_FILE_NAME), "").unwrap();
        assert_eq!(
            locate_in(None, &cwd, Some(&exe)).unwrap(),
            Some(cwd.join("data").join(CONFIG_FILE_NAME))
        );

        fs_err::write(cwd.join(CONFIG_FILE_NAME), "").unwrap();
        assert_eq!(
            locate_in(None, &cwd, Some(&exe)).unwrap(),
            Some(cwd.join(CONFIG_FILE_NAME))
        );
    }

    #[test]
    fn explicit_config_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(CONFIG_FILE_NAME), "").unwrap();
        fs_err::write(dir.path().join("other.yaml"), "").unwrap();
        assert_eq!(
            locate_in(Some(Path::new("other.yaml")), dir.path(), None).unwrap(),
            Some(dir.path().join("other.yaml"))
        );
        let err = locate_in(Some(Path::new("missing.yaml")), dir.path(), None).unwrap_err();
        assert!(
            matches!(&err, ConfigError::NotFound { path } if path.ends_with("missing.yaml")),
            "{err:?}"
        );
    }

    #[test]
    fn load_reads_the_file_and_reports_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE_NAME);
        fs_err::write(&path, "maxconn: 9\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().config.maxconn, 9);
        let err = Config::load(&dir.path().join("absent.yaml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
