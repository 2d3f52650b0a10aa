//! Watching a registry for new tags: what the watch daemon copies each cycle. A watch line
//! names a repository and which of its tags to follow; each cycle lists the source's tags,
//! keeps those the line accepts and the history has not seen (or, following mutable tags,
//! whose digest moved), and hands them to the copy job as ordinary image pairs.
//!
//! Line syntax: `[host/]ns/repo[:MINTAG] [include=REGEX] [exclude=REGEX] [semver=RANGE]
//! [-> [host/]ns2/repo2]`. `MINTAG` keeps tags at or above it in the original's version order
//! (see [`version`]); the options narrow further, all of them applying. A line with no tag and
//! no option follows every tag. A rename changes the repository; tags are kept.

pub mod history;
pub mod version;

use std::cmp::Ordering;
use std::collections::HashSet;

use futures_util::{StreamExt, stream};
use registry::Registry;
use registry::reference::Target;

use crate::error::{Error, Result};
use crate::plan::{ImageName, ImagePair, ListOptions, PlanError, plan_line};
pub use history::History;

/// Why a watch line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchLineError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("a watch line follows tags, not a digest: {0}")]
    Digest(String),
    #[error("invalid {option}= pattern {pattern:?}: {detail}")]
    Pattern {
        option: &'static str,
        pattern: String,
        detail: String,
    },
    #[error("invalid semver= range {range:?}: {detail}")]
    Range { range: String, detail: String },
    #[error("unknown option {0:?}: a watch line takes include=, exclude= and semver=")]
    UnknownOption(String),
}

/// Which tags of a repository a line follows.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Tags at or above this one, in the original's version order.
    pub minimum: Option<String>,
    pub include: Option<regex::Regex>,
    pub exclude: Option<regex::Regex>,
    pub semver: Option<semver::VersionReq>,
}

impl TagFilter {
    pub fn accepts(&self, tag: &str) -> bool {
        let above_minimum = self
            .minimum
            .as_deref()
            .is_none_or(|minimum| version::compare(tag, minimum) != Ordering::Less);
        let included = self.include.as_ref().is_none_or(|re| re.is_match(tag));
        let excluded = self.exclude.as_ref().is_some_and(|re| re.is_match(tag));
        let in_range = self.semver.as_ref().is_none_or(|range| {
            semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag))
                .is_ok_and(|version| range.matches(&version))
        });
        above_minimum && included && !excluded && in_range
    }
}

/// One line of a watch list, planned onto the source and target.
#[derive(Debug, Clone)]
pub struct WatchLine {
    pub line: String,
    /// Repository path on the source (path prefix included).
    pub source: String,
    /// Repository path on the target.
    pub target: String,
    pub filter: TagFilter,
}

impl WatchLine {
    pub fn parse(line: &str, options: &ListOptions) -> Result<WatchLine, WatchLineError> {
        let line = line.trim();
        let (image_part, rename) = match line.split_once("->") {
            Some((image, rename)) => (image, Some(rename.trim())),
            None => (line, None),
        };
        let mut words = image_part.split_whitespace();
        let image = words.next().unwrap_or_default();
        let mut filter = TagFilter::default();
        for option in words {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let pattern = |option: &'static str| {
                regex::Regex::new(value).map_err(|error| WatchLineError::Pattern {
                    option,
                    pattern: value.to_string(),
                    detail: error.to_string(),
                })
            };
            match key {
                "include" => filter.include = Some(pattern("include")?),
                "exclude" => filter.exclude = Some(pattern("exclude")?),
                "semver" => {
                    filter.semver = Some(semver::VersionReq::parse(value).map_err(|error| {
                        WatchLineError::Range {
                            range: value.to_string(),
                            detail: error.to_string(),
                        }
                    })?);
                }
                _ => return Err(WatchLineError::UnknownOption(option.to_string())),
            }
        }
        // The rename names a repository; the planner wants a whole image on each side.
        let planned = match rename {
            Some(rename) => plan_line(&format!("{image} -> {rename}"), options)?,
            None => plan_line(image, options)?,
        };
        let last_segment = image.rsplit('/').next().unwrap_or(image);
        match &planned.source.reference {
            Target::Digest(digest) => return Err(WatchLineError::Digest(digest.to_string())),
            Target::Tag(tag) if last_segment.contains(':') => filter.minimum = Some(tag.clone()),
            Target::Tag(_) => {}
        }
        Ok(WatchLine {
            line: line.to_string(),
            source: planned.source.repository,
            target: planned.target.repository,
            filter,
        })
    }

    /// The history key of one tag, as the original writes it: `host/repository:tag`.
    pub fn history_key(&self, source_host: &str, tag: &str) -> String {
        format!("{source_host}/{}:{tag}", self.source)
    }
}

/// What one cycle found to copy.
#[derive(Debug, Default)]
pub struct CyclePlan {
    /// One pair per tag to copy; its `line` is the tag's history key.
    pub pairs: Vec<ImagePair>,
    /// Lines whose repository could not be listed this cycle, with why; the others go on.
    pub failures: Vec<(String, Error)>,
    /// Tags accepted by their line and already in the history (and unchanged).
    pub already_copied: usize,
}

/// Lists each line's repository on the source and picks the tags to copy. With
/// `follow_mutable`, a tag in the history is copied again when the source's digest for it
/// (asked with HEAD, which registries do not count against pull quotas) differs from the
/// target's.
pub async fn plan_cycle(
    source: &Registry,
    target: &Registry,
    lines: &[WatchLine],
    history: &History,
    follow_mutable: bool,
    parallel: usize,
) -> CyclePlan {
    let source_host = source.endpoint().host.clone();
    let listed: Vec<_> = stream::iter(lines)
        .map(|line| async move { (line, source.list_tags(&line.source).await) })
        .buffered(parallel.max(1))
        .collect()
        .await;
    let mut plan = CyclePlan::default();
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    for (line, tags) in listed {
        let tags = match tags {
            Ok(tags) => tags,
            Err(error) => {
                plan.failures.push((line.line.clone(), Error::from(error)));
                continue;
            }
        };
        for tag in tags.into_iter().filter(|tag| line.filter.accepts(tag)) {
            let key = line.history_key(&source_host, &tag);
            // Two lines may follow the same repository: each tag once.
            if !seen.insert((key.clone(), line.target.clone())) {
                continue;
            }
            candidates.push((line, tag, key));
        }
    }
    let decided: Vec<_> = stream::iter(candidates)
        .map(|(line, tag, key)| async move {
            let copy = if !history.contains(&key) {
                true
            } else if follow_mutable {
                moved(source, target, line, &tag).await
            } else {
                false
            };
            (line, tag, key, copy)
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    for (line, tag, key, copy) in decided {
        if !copy {
            plan.already_copied += 1;
            continue;
        }
        plan.pairs.push(ImagePair {
            line: key,
            source_text: format!("{}:{tag}", line.source),
            source: ImageName {
                repository: line.source.clone(),
                reference: Target::Tag(tag.clone()),
            },
            target: ImageName {
                repository: line.target.clone(),
                reference: Target::Tag(tag),
            },
        });
    }
    plan
}

/// Whether a copied tag now names something else on the source than on the target. When
/// either side cannot say, the tag is left for the copy job, which asks again properly.
async fn moved(source: &Registry, target: &Registry, line: &WatchLine, tag: &str) -> bool {
    let on_source = source.head_manifest(&line.source, tag, false).await;
    let on_target = target.head_manifest(&line.target, tag, true).await;
    match (on_source, on_target) {
        (Ok(Some(source)), Ok(Some(target))) => source != target,
        (Ok(None), _) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> WatchLine {
        WatchLine::parse(line, &ListOptions::default()).unwrap()
    }

    #[test]
    fn a_tag_is_a_lower_bound() {
        let line = parse("10.0.0.1/team/app:v3.5");
        assert_eq!(line.source, "team/app");
        assert!(line.filter.accepts("v3.10"));
        assert!(line.filter.accepts("v3.5"));
        assert!(!line.filter.accepts("v3.4"));
        assert!(!line.filter.accepts("latest"));
    }

    #[test]
    fn no_tag_follows_every_tag() {
        let line = parse("team/app");
        assert!(line.filter.accepts("latest"));
        assert!(line.filter.accepts("anything"));
    }

    #[test]
    fn patterns_and_ranges_narrow_the_tags() {
        let line = parse(r"team/app include=^v\d exclude=-rc semver=>=1.2,<2");
        assert!(line.filter.accepts("v1.4.0"));
        assert!(!line.filter.accepts("v1.4.0-rc1"), "excluded");
        assert!(!line.filter.accepts("v2.0.0"), "out of range");
        assert!(!line.filter.accepts("1.4.0"), "not included");
        let bounded = parse("team/app:C_20210818000000 include=^C_");
        assert!(bounded.filter.accepts("C_20210819100000"));
        assert!(!bounded.filter.accepts("C_20210817100000"));
    }

    #[test]
    fn a_rename_moves_the_repository_and_keeps_tags() {
        let options = ListOptions {
            source: None,
            target: None,
            target_namespace: Some("shipped".into()),
        };
        let line = WatchLine::parse("team/app:v1 -> other/app", &options).unwrap();
        assert_eq!(line.source, "team/app");
        assert_eq!(line.target, "other/app");
        assert_eq!(line.filter.minimum.as_deref(), Some("v1"));
        let plain = WatchLine::parse("team/app:v1", &options).unwrap();
        assert_eq!(plain.target, "shipped/app");
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let options = ListOptions::default();
        assert!(matches!(
            WatchLine::parse("team/app include=(", &options),
            Err(WatchLineError::Pattern { .. })
        ));
        assert!(matches!(
            WatchLine::parse("team/app semver=banana", &options),
            Err(WatchLineError::Range { .. })
        ));
        assert!(matches!(
            WatchLine::parse("team/app since=1", &options),
            Err(WatchLineError::UnknownOption(_))
        ));
        let digest = format!("team/app@sha256:{}", "0".repeat(64));
        assert!(matches!(
            WatchLine::parse(&digest, &options),
            Err(WatchLineError::Digest(_))
        ));
    }
}
