//! The `source:` and `target:` entries of cfg.yaml, and how a `--from`/`--to` argument becomes
//! one: a configured name first, else a registry URL. Separate from loading because commands
//! given only URLs use this without any config file.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::redacted::Redacted;
use super::{Config, ConfigError};

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

/// Which list a registry name is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Side {
    Source,
    Target,
}

impl Config {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

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
}
