//! Reads the original tool's `cfg.yaml`, every key it ever accepted (ORIG and the exyb fork), so
//! that existing deployments keep working unchanged.
//!
//! Two things differ on purpose: a key we do not know is reported as a warning instead of being
//! silently dropped (a misspelt `registri:` used to look like an anonymous registry), and a
//! malformed file fails with its name, line and column instead of a bare YAML message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rust_i18n::t;
use serde::{Deserialize, Deserializer};

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

/// One entry of `source:` or `target:`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct RegistryEntry {
    /// Selection key for `-src`/`-dst`; empty when the entry has no name.
    pub(crate) name: String,
    /// `[scheme://]host[:port][/path-prefix]`; no scheme or `http://` means insecure, as in the original.
    pub(crate) registry: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    /// Target namespace rewrite.
    pub(crate) repository: Option<String>,
    /// Skip TLS verification and allow plain HTTP (fork).
    pub(crate) insecure: bool,
    /// Skip TLS verification for this registry only.
    pub(crate) skiptlsverify: bool,
    /// PEM file with the CA that signed the registry's certificate.
    pub(crate) cacert: Option<PathBuf>,
}

impl fmt::Debug for RegistryEntry {
    /// Hides the password so that a logged or printed entry cannot leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("name", &self.name)
            .field("registry", &self.registry)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("repository", &self.repository)
            .field("insecure", &self.insecure)
            .field("skiptlsverify", &self.skiptlsverify)
            .field("cacert", &self.cacert)
            .finish()
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

/// One `dingtalk:` robot.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct DingTalkRobot {
    pub(crate) token: String,
    pub(crate) secret: String,
    /// Endpoint instead of DingTalk's own (a proxy, or a test receiver); the token still goes
    /// in the query.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for DingTalkRobot {
    /// Both fields are credentials: the token alone lets anyone post to the group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DingTalkRobot")
            .field("token", &Redacted)
            .field("secret", &Redacted)
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `wecom:` group robot (WeCom, 企业微信).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct WeComRobot {
    pub(crate) key: String,
    /// Endpoint instead of WeCom's own; the key still goes in the query.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for WeComRobot {
    /// The key is the robot's only credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeComRobot")
            .field("key", &Redacted)
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `feishu:` custom bot (Feishu / Lark).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct FeishuRobot {
    /// The last part of the bot's webhook address.
    pub(crate) token: String,
    /// Set when the bot has signature verification turned on.
    pub(crate) secret: Option<String>,
    /// Base instead of Feishu's own; the token is appended as the last path part.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for FeishuRobot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuRobot")
            .field("token", &Redacted)
            .field("secret", &self.secret.as_ref().map(|_| Redacted))
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `webhook:` entry: any HTTP endpoint that takes a JSON document per event.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Webhook {
    pub(crate) url: String,
    /// Extra request headers, typically `Authorization`.
    pub(crate) headers: BTreeMap<String, String>,
}

impl fmt::Debug for Webhook {
    /// Webhook addresses often carry their secret in the path or query, and headers carry
    /// tokens: only the scheme, host and header names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &Origin(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A URL shown as `scheme://host[:port]/***`: enough to tell endpoints apart, without the
/// credentials that user info, path or query may hold.
struct Origin<'a>(&'a str);

impl fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}/***\"", url_origin(self.0))
    }
}

/// `scheme://host[:port]` of `url`, user info dropped; the text before any `/` when it has no
/// scheme.
fn url_origin(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(index) => url.split_at(index + 3),
        None => ("", url),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}")
}

/// A parsed file with the keys it contained that we do not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadedConfig {
    pub(crate) config: Config,
    /// Paths such as `target[0].registri`, in file order, for the caller to warn about.
    pub(crate) unknown_keys: Vec<String>,
}

/// Which list a registry name is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Side {
    Source,
    Target,
}

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
fn tab_indented_line(text: &str) -> Option<(u64, u64)> {
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

    /// The source entry whose `name` is exactly `name`.
    pub(crate) fn find_source(&self, name: &str) -> Result<&RegistryEntry, ConfigError> {
        find(&self.source, Side::Source, name)
    }

    /// The target entry whose `name` is exactly `name`.
    pub(crate) fn find_target(&self, name: &str) -> Result<&RegistryEntry, ConfigError> {
        find(&self.target, Side::Target, name)
    }

    /// A `--from` argument: a configured source name wins (as in the original), else a registry URL.
    pub(crate) fn resolve_source(&self, arg: &str) -> Result<RegistryEntry, ConfigError> {
        or_url(self.find_source(arg), arg)
    }

    /// A `--to` argument: a configured target name wins, else a registry URL.
    pub(crate) fn resolve_target(&self, arg: &str) -> Result<RegistryEntry, ConfigError> {
        or_url(self.find_target(arg), arg)
    }
}

impl RegistryEntry {
    /// An entry for a registry given on the command line: `http://127.0.0.1:5000`,
    /// `https://host/prefix`, or a bare `host[:port][/prefix]`, which means HTTPS.
    ///
    /// The bare form gets an explicit `https://` because in `cfg.yaml` a missing scheme means
    /// insecure; on the command line nobody expects a bare host to turn verification off.
    pub(crate) fn from_url(arg: &str) -> Result<Self, ConfigError> {
        let invalid = |detail: &str| ConfigError::InvalidRegistryUrl {
            value: without_password(arg),
            detail: detail.to_owned(),
        };
        let trimmed = arg.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => ("http", rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => ("https", rest),
            Some(_) => return Err(invalid("only http:// and https:// are supported")),
            None => ("https", trimmed),
        };
        let rest = rest.trim_end_matches('/');
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        if rest.contains(['?', '#', '@', ' ', '\t']) || rest.split('/').skip(1).any(str::is_empty) {
            return Err(invalid("expected [http[s]://]host[:port][/path]"));
        }
        if let Some((_, port)) = host.rsplit_once(':')
            && !host.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(invalid("the port must be a number from 0 to 65535"));
        }
        Ok(Self {
            name: arg.to_owned(),
            registry: format!("{scheme}://{rest}"),
            ..Self::default()
        })
    }

    /// True when the argument cannot be a plain `name` and so must be a registry address.
    pub(crate) fn looks_like_url(arg: &str) -> bool {
        arg.contains("://") || arg.contains(['.', ':', '/']) || arg == "localhost"
    }
}

/// `arg` as it may be shown: a password written into the address (`https://user:pw@host`) is
/// replaced by `***`, so an error message never prints it back.
pub(crate) fn without_password(arg: &str) -> String {
    let (scheme, rest) = match arg.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), arg),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}{user}:***@{host}{path}")
        }
        None => arg.to_owned(),
    }
}

fn find<'a>(
    entries: &'a [RegistryEntry],
    side: Side,
    name: &str,
) -> Result<&'a RegistryEntry, ConfigError> {
    entries
        .iter()
        .find(|entry| entry.name == name)
        .ok_or_else(|| ConfigError::UnknownRegistry {
            side,
            name: name.to_owned(),
            known: entries
                .iter()
                .filter(|entry| !entry.name.is_empty())
                .map(|entry| entry.name.clone())
                .collect(),
        })
}

fn or_url(
    found: Result<&RegistryEntry, ConfigError>,
    arg: &str,
) -> Result<RegistryEntry, ConfigError> {
    match found {
        Ok(entry) => Ok(entry.clone()),
        Err(_) if RegistryEntry::looks_like_url(arg) => RegistryEntry::from_url(arg),
        Err(err) => Err(err),
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

fn parse_error(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
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

/// The file as written; `Option` everywhere because a YAML null (`user:` with nothing after it)
/// means "not set", exactly like a missing key.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    source: Option<Vec<Option<RawRegistry>>>,
    #[serde(default)]
    target: Option<Vec<Option<RawRegistry>>>,
    #[serde(default)]
    maxconn: Option<usize>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    stalltimeout: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    singlefile: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    dockerfile: bool,
    #[serde(default)]
    compressor: Option<String>,
    #[serde(default)]
    squashfs: Option<String>,
    #[serde(default)]
    cache: Option<RawCache>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    keeptemp: bool,
    #[serde(default)]
    outprefix: Option<String>,
    #[serde(default)]
    interval: Option<RawInterval>,
    #[serde(default)]
    dingtalk: Option<Vec<Option<RawDingTalk>>>,
    #[serde(default)]
    wecom: Option<Vec<Option<RawWeCom>>>,
    #[serde(default)]
    feishu: Option<Vec<Option<RawFeishu>>>,
    #[serde(default)]
    webhook: Option<Vec<Option<RawWebhook>>>,
    #[serde(default, deserialize_with = "null_as_default")]
    skiptlsverify: bool,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    outputformat: Option<String>,
    #[serde(default)]
    localstore: Option<String>,
}

#[derive(Deserialize)]
struct RawRegistry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    insecure: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    skiptlsverify: bool,
    #[serde(default)]
    cacert: Option<String>,
}

#[derive(Deserialize)]
struct RawCache {
    #[serde(default)]
    pathname: Option<String>,
    #[serde(default)]
    keepdays: Option<u32>,
    #[serde(default)]
    /// GiB; a fraction such as 0.5 is accepted.
    keepsize: Option<f64>,
}

#[derive(Deserialize)]
struct RawDingTalk {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawWeCom {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawFeishu {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawWebhook {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, Option<String>>>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Blank strings count as unset: `outprefix: ""` and `outprefix:` meant the same to the original.
fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

impl RawConfig {
    fn finish(self) -> Result<Config, String> {
        let defaults = Config::default();
        Ok(Config {
            source: registries(self.source, "source")?,
            target: registries(self.target, "target")?,
            maxconn: self.maxconn.filter(|&n| n > 0).unwrap_or(defaults.maxconn),
            retries: self.retries.filter(|&n| n > 0).unwrap_or(defaults.retries),
            stalltimeout: self
                .stalltimeout
                .filter(|&n| n > 0)
                .unwrap_or(defaults.stalltimeout),
            singlefile: self.singlefile,
            dockerfile: self.dockerfile,
            compressor: non_blank(self.compressor),
            squashfs: non_blank(self.squashfs),
            cache: self.cache.and_then(RawCache::finish),
            lang: non_blank(self.lang),
            keeptemp: self.keeptemp,
            outprefix: non_blank(self.outprefix),
            interval: match &self.interval {
                Some(RawInterval::Seconds(seconds)) if *seconds > 0 => *seconds,
                Some(RawInterval::Text(text)) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or(defaults.interval),
                _ => defaults.interval,
            },
            interval_cron: match self.interval {
                Some(RawInterval::Text(text)) if text.trim().parse::<u64>().is_err() => {
                    non_blank(Some(text))
                }
                _ => None,
            },
            dingtalk: entries(self.dingtalk)
                .map(|robot| DingTalkRobot {
                    token: robot.token.unwrap_or_default(),
                    secret: robot.secret.unwrap_or_default(),
                    url: non_blank(robot.url),
                })
                .collect(),
            wecom: entries(self.wecom)
                .map(|robot| WeComRobot {
                    key: robot.key.unwrap_or_default(),
                    url: non_blank(robot.url),
                })
                .collect(),
            feishu: entries(self.feishu)
                .map(|robot| FeishuRobot {
                    token: robot.token.unwrap_or_default(),
                    secret: non_blank(robot.secret),
                    url: non_blank(robot.url),
                })
                .collect(),
            webhook: entries(self.webhook)
                .map(|hook| Webhook {
                    url: hook.url.unwrap_or_default(),
                    // `Name:` with no value sends the header empty, as YAML readers would expect.
                    headers: hook
                        .headers
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, value)| (name, value.unwrap_or_default()))
                        .collect(),
                })
                .collect(),
            skiptlsverify: self.skiptlsverify,
            platform: non_blank(self.platform),
            outputformat: non_blank(self.outputformat),
            localstore: non_blank(self.localstore).map(PathBuf::from),
        })
    }
}

/// The entries of a list key, leaving out bare `-` items.
fn entries<T>(raw: Option<Vec<Option<T>>>) -> impl Iterator<Item = T> {
    raw.unwrap_or_default().into_iter().flatten()
}

fn registries(
    raw: Option<Vec<Option<RawRegistry>>>,
    list: &str,
) -> Result<Vec<RegistryEntry>, String> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        // A bare `-` item is an entry the user left empty; skipping it keeps the indexes of the others.
        .filter_map(|(index, entry)| entry.map(|entry| (index, entry)))
        .map(|(index, entry)| {
            let registry = non_blank(entry.registry).ok_or_else(|| {
                t!(
                    "error.registry_missing_address",
                    entry = format!("{list}[{index}]")
                )
                .into_owned()
            })?;
            Ok(RegistryEntry {
                name: entry
                    .name
                    .map(|name| name.trim().to_owned())
                    .unwrap_or_default(),
                registry: registry.trim().to_owned(),
                user: non_blank(entry.user),
                password: entry.password.filter(|password| !password.is_empty()),
                repository: non_blank(entry.repository),
                insecure: entry.insecure,
                skiptlsverify: entry.skiptlsverify,
                cacert: non_blank(entry.cacert).map(PathBuf::from),
            })
        })
        .collect()
}

/// `interval:` as the original wrote it (seconds) or as a cron expression.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawInterval {
    Seconds(u64),
    Text(String),
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

impl RawCache {
    fn finish(self) -> Option<CacheConfig> {
        Some(CacheConfig {
            pathname: PathBuf::from(non_blank(self.pathname)?),
            keepdays: self
                .keepdays
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_CACHE_KEEPDAYS),
            keep_bytes: self
                .keepsize
                .filter(|&gib| gib > 0.0 && gib.is_finite())
                .map_or(DEFAULT_CACHE_KEEPSIZE_GIB << 30, |gib| {
                    (gib * (1u64 << 30) as f64) as u64
                }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_an_address_is_never_shown() {
        assert_eq!(
            without_password("http://user:pa55@10.0.0.1:5000/ns"),
            "http://user:***@10.0.0.1:5000/ns"
        );
        assert_eq!(without_password("u:p@host"), "u:***@host");
        assert_eq!(without_password("https://host/a@b"), "https://host/a@b");
        let error = RegistryEntry::from_url("http://user:pa55@10.0.0.1:5000").unwrap_err();
        assert!(!error.to_string().contains("pa55"), "{error}");
    }

    fn parse(text: &str) -> LoadedConfig {
        Config::parse(text, Path::new("cfg.yaml")).unwrap()
    }

    fn parse_err(text: &str) -> ConfigError {
        Config::parse(text, Path::new("/etc/it/cfg.yaml")).unwrap_err()
    }

    /// The sample from the original README, comments and all.
    const README_SAMPLE: &str = r#"
source:
- registry: "http://10.45.80.1"
  user:            # blank user+password = anonymous
  password:
  #name: nj
target:
- registry: "http://10.45.46.109"
  user:
  password:
  #repository: yyyy   # 10.45.80.1/xxxx/image:tag -> 10.45.46.109/yyyy/image:tag
  #name: gz
#maxconn: 5
#retries: 2
#singlefile: false
#dockerfile: false
#compressor:          # tar | squashfs (see defaults)
#lang: en_US
#cache:
#  pathname: cache
#  keepdays: 7
#  keepsize: 10
#outprefix:
#interval: 60
#dingtalk:
#- token:
#  secret:
#skiptlsverify: false
"#;

    #[test]
    fn readme_sample_parses_with_nulls_as_absent() {
        let loaded = parse(README_SAMPLE);
        assert!(loaded.unknown_keys.is_empty());
        let config = loaded.config;
        assert_eq!(config.source.len(), 1);
        let source = &config.source[0];
        assert_eq!(source.registry, "http://10.45.80.1");
        assert_eq!(source.name, "");
        assert_eq!(source.user, None);
        assert_eq!(source.password, None);
        assert_eq!(config.target[0].registry, "http://10.45.46.109");
        assert_eq!(config.maxconn, DEFAULT_MAXCONN);
        assert_eq!(config.retries, DEFAULT_RETRIES);
        assert_eq!(config.interval, DEFAULT_INTERVAL_SECS);
        assert_eq!(config.cache, None);
    }

    /// The commented cfg.yaml every download ships, and the same saved by Notepad (CRLF).
    #[test]
    fn the_shipped_sample_is_read_as_written_and_with_crlf() {
        let sample = include_str!("../../../packaging/cfg.yaml");
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
    fn every_key_is_accepted() {
        let loaded = parse(
            r#"
source:
- name: nj
  registry: harbor.local/proj
  user: admin
  password: "s3cret"
  insecure: true
  cacert: /etc/ssl/harbor-ca.pem
target:
- name: gz
  registry: https://10.45.46.109
  repository: yyyy
  skiptlsverify: true
maxconn: 8
retries: 4
singlefile: true
dockerfile: true
compressor: squashfs
squashfs: stream,nocmd
cache:
  pathname: cache
  keepdays: 3
  keepsize: 20
lang: zh_CN
keeptemp: true
outprefix: out/img
interval: 30
dingtalk:
- token: tok
  secret: sec
  url: http://127.0.0.1:8080/robot/send
wecom:
- key: wkey
- key: wkey2
  url: http://127.0.0.1:8080/wecom
feishu:
- token: ftok
- token: ftok2
  secret: fsec
  url: http://127.0.0.1:8080/hook
webhook:
- url: https://hooks.example/in
  headers:
    Authorization: Bearer abc
    X-Empty:
skiptlsverify: true
platform: linux/arm64
outputformat: oci
localstore: data/.blob-store
"#,
        );
        assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
        let config = loaded.config;
        assert_eq!(
            config.source,
            vec![RegistryEntry {
                name: "nj".into(),
                registry: "harbor.local/proj".into(),
                user: Some("admin".into()),
                password: Some("s3cret".into()),
                repository: None,
                insecure: true,
                skiptlsverify: false,
                cacert: Some("/etc/ssl/harbor-ca.pem".into()),
            }]
        );
        assert_eq!(config.target[0].repository.as_deref(), Some("yyyy"));
        assert!(config.target[0].skiptlsverify);
        assert_eq!(config.maxconn, 8);
        assert_eq!(config.retries, 4);
        assert!(config.singlefile && config.dockerfile && config.keeptemp && config.skiptlsverify);
        assert_eq!(config.compressor.as_deref(), Some("squashfs"));
        assert_eq!(config.squashfs.as_deref(), Some("stream,nocmd"));
        assert_eq!(
            config.cache,
            Some(CacheConfig {
                pathname: "cache".into(),
                keepdays: 3,
                keep_bytes: 20 << 30
            })
        );
        assert_eq!(config.lang.as_deref(), Some("zh_CN"));
        assert_eq!(config.outprefix.as_deref(), Some("out/img"));
        assert_eq!(config.interval, 30);
        assert_eq!(
            config.dingtalk,
            vec![DingTalkRobot {
                token: "tok".into(),
                secret: "sec".into(),
                url: Some("http://127.0.0.1:8080/robot/send".into()),
            }]
        );
        assert_eq!(
            config.wecom,
            vec![
                WeComRobot {
                    key: "wkey".into(),
                    url: None
                },
                WeComRobot {
                    key: "wkey2".into(),
                    url: Some("http://127.0.0.1:8080/wecom".into())
                }
            ]
        );
        assert_eq!(
            config.feishu,
            vec![
                FeishuRobot {
                    token: "ftok".into(),
                    secret: None,
                    url: None
                },
                FeishuRobot {
                    token: "ftok2".into(),
                    secret: Some("fsec".into()),
                    url: Some("http://127.0.0.1:8080/hook".into())
                }
            ]
        );
        assert_eq!(
            config.webhook,
            vec![Webhook {
                url: "https://hooks.example/in".into(),
                headers: [
                    ("Authorization".to_owned(), "Bearer abc".to_owned()),
                    ("X-Empty".to_owned(), String::new())
                ]
                .into()
            }]
        );
        assert_eq!(config.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(config.outputformat.as_deref(), Some("oci"));
        assert_eq!(config.localstore, Some(PathBuf::from("data/.blob-store")));
    }

    #[test]
    fn url_origin_keeps_scheme_and_host_only() {
        assert_eq!(
            url_origin("https://h.example:8443/a/b?c#d"),
            "https://h.example:8443"
        );
        assert_eq!(url_origin("http://user:pw@h/x"), "http://h");
        assert_eq!(url_origin("h.example/x"), "h.example");
        assert_eq!(url_origin("https://h?token=1"), "https://h");
    }

    #[test]
    fn interval_is_seconds_or_a_cron_expression() {
        let seconds = parse("interval: '30'\n").config;
        assert_eq!((seconds.interval, seconds.interval_cron), (30, None));
        let cron = parse("interval: \"*/5 * * * *\"\n").config;
        assert_eq!(cron.interval, DEFAULT_INTERVAL_SECS);
        assert_eq!(cron.interval_cron.as_deref(), Some("*/5 * * * *"));
    }

    #[test]
    fn zero_counts_mean_default() {
        let config = parse("maxconn: 0\nretries: 0\ninterval: 0\n").config;
        assert_eq!(config.maxconn, 5);
        assert_eq!(config.retries, 2);
        assert_eq!(config.interval, 60);
    }

    #[test]
    fn null_scalars_and_lists_are_absent() {
        let text = "source:\ntarget:\nmaxconn:\nsinglefile:\ncache:\nlang:\ndingtalk:\nwecom:\nfeishu:\nwebhook:\n";
        let loaded = parse(text);
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.unknown_keys.is_empty());
    }

    #[test]
    fn empty_or_comment_only_file_is_the_default_config() {
        assert_eq!(parse("").config, Config::default());
        assert_eq!(parse("# nothing yet\n\n").config, Config::default());
    }

    #[test]
    fn cache_needs_a_pathname_and_defaults_the_rest() {
        assert_eq!(parse("cache:\n  keepdays: 3\n").config.cache, None);
        assert_eq!(
            parse("cache:\n  pathname: c\n").config.cache,
            Some(CacheConfig {
                pathname: "c".into(),
                keepdays: 7,
                keep_bytes: 10 << 30
            })
        );
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

    #[test]
    fn registry_entry_needs_an_address() {
        let err = parse_err("source:\n- name: a\n  registry: r\ntarget:\n- name: b\n  user: u\n");
        let ConfigError::Invalid { detail, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(detail.contains("target[0]"), "{detail}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = parse(
            "source:\n- name: a\n  registry: r\n  user: u\n  password: hunter2\ndingtalk:\n- token: tok123\n  secret: sec456\n  url: https://u1:pw1@ding.example/p1?q=1\nwecom:\n- key: key789\n  url: http://wecom.example:81/p2\nfeishu:\n- token: ftok1\n  secret: fsec2\nwebhook:\n- url: https://hooks.example/p3/abc?x=sig4\n  headers:\n    Authorization: Bearer hv5\n",
        )
        .config;
        let debug = format!("{config:?}");
        assert!(debug.contains(r#"password: Some("***")"#), "{debug}");
        assert!(debug.contains(r#""https://ding.example/***""#), "{debug}");
        assert!(
            debug.contains(r#""http://wecom.example:81/***""#),
            "{debug}"
        );
        assert!(debug.contains(r#"headers: ["Authorization"]"#), "{debug}");
        for secret in [
            "hunter2", "tok123", "sec456", "u1", "pw1", "p1", "key789", "p2", "ftok1", "fsec2",
            "p3", "sig4", "hv5",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let no_password = RegistryEntry::default();
        assert!(format!("{no_password:?}").contains("password: None"));
    }

    fn two_sided() -> Config {
        parse(
            "source:\n- name: nj\n  registry: http://a\n- registry: http://unnamed\n- name: sh\n  registry: b\ntarget:\n- name: gz\n  registry: c\n",
        )
        .config
    }

    #[test]
    fn find_by_exact_name() {
        let config = two_sided();
        assert_eq!(config.find_source("sh").unwrap().registry, "b");
        assert_eq!(config.find_target("gz").unwrap().registry, "c");
        assert!(config.find_source("NJ").is_err());
        assert!(config.find_source("gz").is_err());
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let config = two_sided();
        let err = config.find_source("xx").unwrap_err();
        let ConfigError::UnknownRegistry { side, name, known } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((*side, name.as_str()), (Side::Source, "xx"));
        assert_eq!(known, &vec!["nj".to_owned(), "sh".to_owned()]);
        assert_eq!(
            rust_i18n::t!(
                "error.unknown_source",
                locale = "en",
                name = name,
                known = known.join(", ")
            ),
            "No source registry named xx in cfg.yaml; known: nj, sh"
        );
        let err = Config::default().find_target("gz").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::UnknownRegistry {
                side: Side::Target,
                ..
            }
        ));
    }

    #[test]
    fn registry_from_url_argument() {
        let entry = RegistryEntry::from_url("http://127.0.0.1:5000").unwrap();
        assert_eq!(entry.registry, "http://127.0.0.1:5000");
        assert_eq!(entry.name, "http://127.0.0.1:5000");
        assert_eq!(
            RegistryEntry::from_url("https://h/prefix/")
                .unwrap()
                .registry,
            "https://h/prefix"
        );
        assert_eq!(
            RegistryEntry::from_url("localhost:5000").unwrap().registry,
            "https://localhost:5000"
        );
        assert_eq!(
            RegistryEntry::from_url("HTTP://[::1]:5000")
                .unwrap()
                .registry,
            "http://[::1]:5000"
        );
        assert_eq!(
            RegistryEntry::from_url("harbor.local").unwrap().registry,
            "https://harbor.local"
        );
    }

    #[test]
    fn bad_url_arguments_are_rejected() {
        for bad in [
            "ftp://h",
            "http://",
            "host:port",
            "h:99999",
            "http://user@h",
            "h//x",
            "",
        ] {
            assert!(
                matches!(
                    RegistryEntry::from_url(bad),
                    Err(ConfigError::InvalidRegistryUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolve_prefers_names_then_urls() {
        let mut config = two_sided();
        config.source.push(RegistryEntry {
            name: "localhost:5000".into(),
            registry: "http://localhost:5000".into(),
            ..RegistryEntry::default()
        });
        assert_eq!(config.resolve_source("nj").unwrap().registry, "http://a");
        assert_eq!(
            config.resolve_source("localhost:5000").unwrap().registry,
            "http://localhost:5000"
        );
        assert_eq!(
            config.resolve_target("127.0.0.1:5000").unwrap().registry,
            "https://127.0.0.1:5000"
        );
        assert!(matches!(
            config.resolve_target("nj"),
            Err(ConfigError::UnknownRegistry {
                side: Side::Target,
                ..
            })
        ));
        assert_eq!(
            Config::default()
                .resolve_source("http://10.0.0.1")
                .unwrap()
                .registry,
            "http://10.0.0.1"
        );
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
