//! cfg.yaml as written (`Raw*`: every key the original or the fork accepted, a YAML null
//! meaning unset) and how it becomes a [`Config`] with the defaults applied. Separate from the
//! types the rest of the program uses, which have no `Option` for what has a default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rust_i18n::t;
use serde::{Deserialize, Deserializer};

use super::{
    CacheConfig, Config, DEFAULT_CACHE_KEEPDAYS, DEFAULT_CACHE_KEEPSIZE_GIB, DingTalkRobot,
    FeishuRobot, RegistryEntry, WeComRobot, Webhook,
};

/// The file as written; `Option` everywhere because a YAML null (`user:` with nothing after it)
/// means "not set", exactly like a missing key.
#[derive(Deserialize)]
pub(super) struct RawConfig {
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
    /// Ours: the job's total bandwidth cap, bytes a second (`50M`, `512K`, or a number).
    #[serde(default)]
    limitrate: Option<RawInterval>,
    /// Ours: upload chunk size (`8M`, or a number of bytes).
    #[serde(default)]
    chunksize: Option<RawInterval>,
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
    pub(super) fn finish(self) -> Result<Config, String> {
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
            limitrate: match self.limitrate {
                None => None,
                Some(RawInterval::Seconds(0)) => None,
                Some(RawInterval::Seconds(bytes)) => Some(bytes.max(1024)),
                Some(RawInterval::Text(text)) if text.trim().is_empty() => None,
                Some(RawInterval::Text(text)) => {
                    Some(engine::rate::parse_rate(&text).ok_or_else(|| {
                        t!("config.not_a_rate", value = format!("{text:?}")).to_string()
                    })?)
                }
            },
            chunksize: match self.chunksize {
                None | Some(RawInterval::Seconds(0)) => None,
                Some(RawInterval::Text(text)) if text.trim().is_empty() => None,
                Some(RawInterval::Seconds(bytes)) => {
                    Some(bytes.max(engine::rate::SMALLEST_UPLOAD_CHUNK))
                }
                Some(RawInterval::Text(text)) => {
                    Some(engine::rate::parse_chunk_size(&text).ok_or_else(|| {
                        t!("config.not_a_chunk_size", value = format!("{text:?}")).to_string()
                    })?)
                }
            },
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

/// `interval:` as the original wrote it (seconds) or as a cron expression; also a number or a
/// text such as `limitrate:`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawInterval {
    Seconds(u64),
    Text(String),
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
    use std::path::PathBuf;

    use super::*;
    use crate::config::tests::{parse, parse_err};
    use crate::config::{ConfigError, DEFAULT_INTERVAL_SECS, DEFAULT_MAXCONN, DEFAULT_RETRIES};

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
    fn registry_entry_needs_an_address() {
        let err = parse_err("source:\n- name: a\n  registry: r\ntarget:\n- name: b\n  user: u\n");
        let ConfigError::Invalid { detail, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(detail.contains("target[0]"), "{detail}");
    }
}
