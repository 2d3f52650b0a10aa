//! Image-list planning: turns the lines a user pastes (`ns/app:1`, `old:1 -> new:2`) into pairs of
//! source and target names on the chosen endpoints.
//!
//! This is the original tool's `GenRepoUrl`, the feature its users rely on most: a list may name
//! any registry, the host in each line is replaced by the selected source and target, the
//! target's `repository:` setting swaps the namespace, and `->` renames. Its bugs are fixed here:
//! hosts with a port or `localhost` are recognised, one-segment names survive the namespace
//! rewrite, digests and default tags work, and a malformed line is an error rather than a
//! silently truncated name.

use std::fmt;
use std::str::FromStr;

use registry::Digest;
use registry::reference::{
    self, DEFAULT_TAG, InvalidReference, Reference, ReferenceProblem, Target,
};

/// Marks a rename in a list line.
const RENAME: &str = "->";

/// A registry as the list addresses it: a host and an optional path under which every repository
/// lives (`harbor.local/proj` is host `harbor.local`, prefix `proj`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAddress {
    /// `host[:port]`, without a scheme.
    pub host: String,
    /// Repository path prefix without leading or trailing `/`; may be empty.
    pub path_prefix: String,
}

impl RegistryAddress {
    /// The full repository path of `path` on this endpoint.
    fn locate(&self, path: &str) -> String {
        let full = join(&self.path_prefix, path);
        // Docker Hub serves one-segment names from `library/`; asking for `alpine` there is a 404.
        if reference::is_docker_hub(&self.host) && !full.contains('/') {
            format!("library/{full}")
        } else {
            full
        }
    }
}

/// Parses a cfg `registry:` value such as `http://10.45.80.1` or `harbor.local/proj/`.
///
/// The scheme is dropped: whether to use TLS is decided elsewhere, and a name never depends on it.
impl FromStr for RegistryAddress {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<RegistryAddress, PlanError> {
        let invalid = |problem| PlanError::InvalidEndpoint {
            text: text.to_string(),
            problem,
        };
        let address = strip_scheme(text.trim()).trim_end_matches('/');
        let (host, path_prefix) = address.split_once('/').unwrap_or((address, ""));
        if host.is_empty() {
            return Err(invalid(ReferenceProblem::Empty));
        }
        reference::check_host(host).map_err(invalid)?;
        if !path_prefix.is_empty() {
            reference::check_repository(path_prefix).map_err(invalid)?;
        }
        Ok(RegistryAddress {
            host: host.to_string(),
            path_prefix: path_prefix.to_string(),
        })
    }
}

impl fmt::Display for RegistryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&join(&self.host, &self.path_prefix))
    }
}

/// Where the lines of one run come from and go to.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// The source registry; `None` when uploading a bundle, where the source side of a line is
    /// the bundle's key, used verbatim.
    pub source: Option<RegistryAddress>,
    /// The target registry; `None` when saving, where the target name is what the bundle records.
    pub target: Option<RegistryAddress>,
    /// The target's cfg `repository:` setting: the namespace that replaces the source's.
    pub target_namespace: Option<String>,
}

/// One planned image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePair {
    /// The line as listed, trimmed.
    pub line: String,
    /// The source side of the line as written (before any `->`), trimmed but otherwise verbatim.
    /// In upload mode this is the key under which the bundle stores the image.
    pub source_text: String,
    pub source: ImageName,
    pub target: ImageName,
}

/// An image on one endpoint, without the host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// The full repository path on that endpoint, path prefix included.
    pub repository: String,
    /// The tag or digest.
    pub reference: Target,
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.repository,
            self.reference.separator(),
            self.reference
        )
    }
}

/// A list line that cannot be planned, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("image list line {line:?}: {reason}")]
pub struct InvalidLine {
    pub line: String,
    pub reason: PlanError,
}

/// Why a list, a line or an endpoint cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the image list has characters that are not printable ASCII: {}", describe_characters(.0))]
    InvalidCharacters(Vec<BadCharacter>),
    #[error("the line is empty")]
    EmptyLine,
    #[error("nothing before \"->\": a rename needs a source image")]
    MissingSource,
    #[error("nothing after \"->\": a rename needs a new name")]
    MissingRename,
    #[error("more than one \"->\": a line renames one image once")]
    MultipleRenames,
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error("the resulting repository {repository:?} is invalid: {problem}")]
    InvalidRepository {
        repository: String,
        problem: ReferenceProblem,
    },
    #[error(
        "the new name gives digest {0}, which is not the source's digest: \
         a copy keeps the digest, so a rename may only give a tag"
    )]
    RenameChangesDigest(Digest),
    #[error("invalid registry address {text:?}: {problem}")]
    InvalidEndpoint {
        text: String,
        problem: ReferenceProblem,
    },
}

/// A character that may not appear in an image list, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCharacter {
    /// 1-based line number in the list text.
    pub line: usize,
    pub character: char,
}

fn describe_characters(found: &[BadCharacter]) -> String {
    found
        .iter()
        .map(|bad| format!("line {} has U+{:04X}", bad.line, u32::from(bad.character)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Normalises image-list text into lines, as the original does: TABs removed, CRLF or LF line
/// ends, lines trimmed, blank lines dropped.
///
/// Beyond the original, `#` starts a comment when it begins a line or follows whitespace (`#`
/// cannot occur in a reference, so no image line is lost), and a UTF-8 byte-order mark is ignored
/// (Windows Notepad writes one).
///
/// Like the original, the whole list is rejected when any image text holds a control or
/// non-ASCII character: these are typically full-width colons or no-break spaces pasted from chat
/// or documents, and copying a partial list would be worse than stopping. Unlike the original,
/// the error names each line and character, and comments may hold any text.
pub fn parse_list(text: &str) -> Result<Vec<String>, PlanError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line: String = strip_comment(raw).chars().filter(|&c| c != '\t').collect();
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        bad.extend(
            line.chars()
                .filter(|c| !(' '..='~').contains(c))
                .map(|character| BadCharacter {
                    line: index + 1,
                    character,
                }),
        );
        lines.push(line.to_string());
    }
    if bad.is_empty() {
        Ok(lines)
    } else {
        Err(PlanError::InvalidCharacters(bad))
    }
}

fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c == ' ' || c == '\t';
    }
    line
}

/// Plans every line; the valid ones become pairs, the others are returned with their reason so a
/// run can copy what it can and report the rest.
pub fn plan(lines: &[String], options: &ListOptions) -> (Vec<ImagePair>, Vec<InvalidLine>) {
    let mut pairs = Vec::new();
    let mut invalid = Vec::new();
    for line in lines {
        match plan_line(line, options) {
            Ok(pair) => pairs.push(pair),
            Err(reason) => invalid.push(InvalidLine {
                line: line.trim().to_string(),
                reason,
            }),
        }
    }
    (pairs, invalid)
}

/// Plans one line: `[scheme://][host/]path[:tag|@digest] [-> [host/]new-path[:tag]]`.
pub fn plan_line(line: &str, options: &ListOptions) -> Result<ImagePair, PlanError> {
    let line = line.trim();
    if line.is_empty() {
        return Err(PlanError::EmptyLine);
    }
    let (source_text, rename_text) = split_rename(line)?;

    let source = parse_side(source_text, Target::default_tag())?;
    let target = match rename_text {
        None => ImageName {
            repository: replace_namespace(&source.repository, options.target_namespace.as_deref()),
            reference: source.target.clone(),
        },
        Some(rename_text) => {
            // Without a tag of its own, the new name keeps a source digest: the image stays
            // pinned. A tagged source gets `latest`, as `docker tag` does.
            let default = match &source.target {
                Target::Digest(_) => source.target.clone(),
                Target::Tag(_) => Target::Tag(DEFAULT_TAG.to_string()),
            };
            let renamed = parse_side(rename_text, default)?;
            if let Some(digest) = renamed.target.digest()
                && renamed.target != source.target
            {
                return Err(PlanError::RenameChangesDigest(digest.clone()));
            }
            ImageName {
                repository: rename_namespace(
                    &renamed.repository,
                    options.target_namespace.as_deref(),
                ),
                reference: renamed.target,
            }
        }
    };

    let source = ImageName {
        repository: match &options.source {
            Some(endpoint) => endpoint.locate(&source.repository),
            None => source.repository,
        },
        reference: source.target,
    };
    let target = ImageName {
        repository: match &options.target {
            Some(endpoint) => endpoint.locate(&target.repository),
            None => target.repository,
        },
        reference: target.reference,
    };
    for name in [&source, &target] {
        reference::check_repository(&name.repository).map_err(|problem| {
            PlanError::InvalidRepository {
                repository: name.repository.clone(),
                problem,
            }
        })?;
    }
    Ok(ImagePair {
        line: line.to_string(),
        source_text: source_text.to_string(),
        source,
        target,
    })
}

/// Splits `src -> dst`; the original kept only the part before a second `->`, which silently
/// renamed to the wrong name.
fn split_rename(line: &str) -> Result<(&str, Option<&str>), PlanError> {
    let Some((source, rename)) = line.split_once(RENAME) else {
        return Ok((line, None));
    };
    if rename.contains(RENAME) {
        return Err(PlanError::MultipleRenames);
    }
    let (source, rename) = (source.trim(), rename.trim());
    if source.is_empty() {
        return Err(PlanError::MissingSource);
    }
    if rename.is_empty() {
        return Err(PlanError::MissingRename);
    }
    Ok((source, Some(rename)))
}

/// Parses one side of a line without its scheme or leading `/`. Callers use only the repository
/// and target: the host a list line names is always replaced by the selected endpoint.
fn parse_side(text: &str, default_target: Target) -> Result<Reference, PlanError> {
    let name = strip_scheme(text).trim_start_matches('/');
    if name.is_empty() {
        return Err(InvalidReference {
            text: text.to_string(),
            problem: ReferenceProblem::MissingRepository,
        }
        .into());
    }
    Ok(Reference::parse_or(name, default_target)?)
}

fn strip_scheme(text: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(prefix) = text.get(..scheme.len())
            && prefix.eq_ignore_ascii_case(scheme)
        {
            return &text[scheme.len()..];
        }
    }
    text
}

/// Without a rename, the namespace setting replaces the first path segment (`public/alpine` →
/// `ns/alpine`); a one-segment name has no namespace to replace, so it gets one (the original
/// produced an empty name here).
fn replace_namespace(path: &str, namespace: Option<&str>) -> String {
    match namespace_setting(namespace) {
        None => path.to_string(),
        Some(namespace) => match path.split_once('/') {
            Some((_, rest)) => join(namespace, rest),
            None => join(namespace, path),
        },
    }
}

/// A rename that names its own namespace (`team/app`) means exactly that name; a bare new name
/// goes under the namespace setting.
fn rename_namespace(path: &str, namespace: Option<&str>) -> String {
    match namespace_setting(namespace) {
        Some(namespace) if !path.contains('/') => join(namespace, path),
        _ => path.to_string(),
    }
}

/// An empty or all-slash `repository:` in cfg.yaml means no namespace, not an empty segment.
fn namespace_setting(namespace: Option<&str>) -> Option<&str> {
    namespace
        .map(|namespace| namespace.trim().trim_matches('/'))
        .filter(|namespace| !namespace.is_empty())
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}/{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER_HEX: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn endpoint(text: &str) -> RegistryAddress {
        text.parse().unwrap()
    }

    fn options(source: Option<&str>, target: Option<&str>, namespace: Option<&str>) -> ListOptions {
        ListOptions {
            source: source.map(endpoint),
            target: target.map(endpoint),
            target_namespace: namespace.map(str::to_string),
        }
    }

    /// The reference's setting: source repo `http://10.45.80.1`, target `http://10.45.46.109`.
    fn reference_options(namespace: Option<&str>) -> ListOptions {
        options(
            Some("http://10.45.80.1"),
            Some("http://10.45.46.109"),
            namespace,
        )
    }

    fn planned(line: &str, options: &ListOptions) -> (String, String) {
        let pair = plan_line(line, options).unwrap_or_else(|e| panic!("{line}: {e}"));
        (pair.source.to_string(), pair.target.to_string())
    }

    fn check(
        cases: &[(&str, Option<&str>, &str, &str)],
        options_for: impl Fn(Option<&str>) -> ListOptions,
    ) {
        for &(line, namespace, source, target) in cases {
            assert_eq!(
                planned(line, &options_for(namespace)),
                (source.to_string(), target.to_string()),
                "line {line:?}, namespace {namespace:?}"
            );
        }
    }

    #[test]
    fn reference_worked_examples() {
        check(
            &[
                (
                    "10.45.80.21/public/alpine:3.11",
                    None,
                    "public/alpine:3.11",
                    "public/alpine:3.11",
                ),
                (
                    "10.45.80.21/public/alpine:3.11",
                    Some("yyyy"),
                    "public/alpine:3.11",
                    "yyyy/alpine:3.11",
                ),
                (
                    "10.45.80.1/public/alpine:3.5 -> alpine-2:3.5-2",
                    None,
                    "public/alpine:3.5",
                    "alpine-2:3.5-2",
                ),
                (
                    "10.45.80.1/public/alpine:3.5 -> public-2/alpine-2:3.5-2",
                    Some("yyyy"),
                    "public/alpine:3.5",
                    "public-2/alpine-2:3.5-2",
                ),
                (
                    "10.45.80.1/public/alpine:3.5 -> newhub.docker.com/r/n:t",
                    None,
                    "public/alpine:3.5",
                    "r/n:t",
                ),
                // The original produced an empty name here.
                (
                    "alpine:3.11",
                    Some("yyyy"),
                    "alpine:3.11",
                    "yyyy/alpine:3.11",
                ),
                ("a/b/c:t", Some("yyyy"), "a/b/c:t", "yyyy/b/c:t"),
            ],
            reference_options,
        );
    }

    #[test]
    fn hosts_docker_recognises_are_replaced() {
        check(
            &[
                ("localhost:5000/a/b:t", None, "a/b:t", "a/b:t"),
                ("myreg:5000/x:1", None, "x:1", "x:1"),
                ("localhost/x", None, "x:latest", "x:latest"),
                ("http://reg.io/ns/app:1", None, "ns/app:1", "ns/app:1"),
                ("HTTPS://reg.io/ns/app:1", None, "ns/app:1", "ns/app:1"),
                ("/ns/app:1", None, "ns/app:1", "ns/app:1"),
                ("https:///ns/app", None, "ns/app:latest", "ns/app:latest"),
                (
                    "ns/app -> localhost:5000/other/app:2",
                    None,
                    "ns/app:latest",
                    "other/app:2",
                ),
                (
                    "ns/app:1 -> mine",
                    Some("yyyy"),
                    "ns/app:1",
                    "yyyy/mine:latest",
                ),
                ("ns/app:1->mine:2", None, "ns/app:1", "mine:2"),
            ],
            reference_options,
        );
    }

    #[test]
    fn path_prefixes_apply_on_both_ends() {
        let options_for = |namespace: Option<&str>| {
            options(
                Some("https://harbor.local/proj/"),
                Some("reg2:5000/mirror/team"),
                namespace,
            )
        };
        check(
            &[
                (
                    "library/nginx:1",
                    None,
                    "proj/library/nginx:1",
                    "mirror/team/library/nginx:1",
                ),
                (
                    "library/nginx:1",
                    Some("yyyy"),
                    "proj/library/nginx:1",
                    "mirror/team/yyyy/nginx:1",
                ),
                (
                    "nginx",
                    Some("/yyyy/"),
                    "proj/nginx:latest",
                    "mirror/team/yyyy/nginx:latest",
                ),
                (
                    "other.io/x/y:2 -> z:3",
                    None,
                    "proj/x/y:2",
                    "mirror/team/z:3",
                ),
            ],
            options_for,
        );
    }

    #[test]
    fn docker_hub_one_segment_names_live_under_library() {
        let options_for = |namespace: Option<&str>| {
            options(Some("docker.io"), Some("index.docker.io"), namespace)
        };
        check(
            &[
                ("alpine:3", None, "library/alpine:3", "library/alpine:3"),
                (
                    "bitnami/redis",
                    None,
                    "bitnami/redis:latest",
                    "bitnami/redis:latest",
                ),
                (
                    "alpine:3",
                    Some("mirror"),
                    "library/alpine:3",
                    "mirror/alpine:3",
                ),
            ],
            options_for,
        );
    }

    #[test]
    fn digest_references_stay_pinned() {
        let digest_line = format!("ns/app@sha256:{HEX}");
        let pinned = format!("ns/app@sha256:{HEX}");
        check(
            &[
                (&digest_line, None, &pinned, &pinned),
                (
                    &format!("{digest_line} -> mine:v1"),
                    None,
                    &pinned,
                    "mine:v1",
                ),
                (
                    &format!("{digest_line} -> mine"),
                    Some("yyyy"),
                    &pinned,
                    &format!("yyyy/mine@sha256:{HEX}"),
                ),
                (
                    &format!("{digest_line} -> mine@sha256:{HEX}"),
                    None,
                    &pinned,
                    &format!("mine@sha256:{HEX}"),
                ),
                (&format!("ns/app:1@sha256:{HEX}"), None, &pinned, &pinned),
            ],
            reference_options,
        );
    }

    #[test]
    fn a_rename_cannot_change_the_digest() {
        let options = reference_options(None);
        for line in [
            format!("ns/app:1 -> mine@sha256:{HEX}"),
            format!("ns/app@sha256:{HEX} -> mine@sha256:{OTHER_HEX}"),
        ] {
            let error = plan_line(&line, &options).unwrap_err();
            assert!(
                matches!(error, PlanError::RenameChangesDigest(_)),
                "{line}: {error:?}"
            );
        }
    }

    #[test]
    fn upload_mode_keeps_the_key_verbatim() {
        let options = options(None, Some("http://10.45.46.109"), Some("yyyy"));
        let pair = plan_line("  http://10.45.80.1/public/alpine:3.11  ", &options).unwrap();
        assert_eq!(pair.line, "http://10.45.80.1/public/alpine:3.11");
        assert_eq!(pair.source_text, "http://10.45.80.1/public/alpine:3.11");
        assert_eq!(pair.source.to_string(), "public/alpine:3.11");
        assert_eq!(pair.target.to_string(), "yyyy/alpine:3.11");

        let pair = plan_line("http://10.45.80.1/public/alpine:3.11 -> a/b:c", &options).unwrap();
        assert_eq!(pair.source_text, "http://10.45.80.1/public/alpine:3.11");
        assert_eq!(pair.target.to_string(), "a/b:c");
    }

    #[test]
    fn save_mode_names_the_target_without_an_endpoint() {
        let options = options(Some("harbor.local/proj"), None, Some("yyyy"));
        assert_eq!(
            planned("public/alpine:3.11", &options),
            (
                "proj/public/alpine:3.11".to_string(),
                "yyyy/alpine:3.11".to_string()
            )
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_a_reason() {
        use ReferenceProblem as P;
        let options = reference_options(None);
        let reference = |text: &str, problem| {
            PlanError::Reference(InvalidReference {
                text: text.to_string(),
                problem,
            })
        };
        let cases = [
            ("Foo:bar", reference("Foo:bar", P::Uppercase)),
            ("a->", PlanError::MissingRename),
            ("->b", PlanError::MissingSource),
            ("  ->  ", PlanError::MissingSource),
            ("a:b:c", reference("a:b:c", P::MisplacedColon)),
            ("a->b->c", PlanError::MultipleRenames),
            ("", PlanError::EmptyLine),
            ("http://", reference("http://", P::MissingRepository)),
            ("reg.io/", reference("reg.io/", P::MissingRepository)),
            ("a -> B", reference("B", P::Uppercase)),
            (
                "alpine:3.11 extra",
                reference("alpine:3.11 extra", P::InvalidTag("3.11 extra".into())),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(plan_line(line, &options).unwrap_err(), expected, "{line:?}");
        }
    }

    #[test]
    fn an_invalid_namespace_is_reported_with_the_resulting_name() {
        let error = plan_line("public/alpine", &reference_options(Some("Yyyy"))).unwrap_err();
        assert_eq!(
            error,
            PlanError::InvalidRepository {
                repository: "Yyyy/alpine".into(),
                problem: ReferenceProblem::Uppercase,
            }
        );
        assert_eq!(
            error.to_string(),
            "the resulting repository \"Yyyy/alpine\" is invalid: repository names must be lowercase"
        );
    }

    #[test]
    fn plan_separates_valid_and_invalid_lines() {
        let lines = ["alpine:3.11", "Foo:bar", "a->b->c", "ns/app -> x"].map(str::to_string);
        let (pairs, invalid) = plan(&lines, &reference_options(Some("yyyy")));
        let targets: Vec<String> = pairs.iter().map(|pair| pair.target.to_string()).collect();
        assert_eq!(targets, ["yyyy/alpine:3.11", "yyyy/x:latest"]);
        let invalid_lines: Vec<&str> = invalid.iter().map(|bad| bad.line.as_str()).collect();
        assert_eq!(invalid_lines, ["Foo:bar", "a->b->c"]);
        assert_eq!(
            invalid[0].to_string(),
            "image list line \"Foo:bar\": invalid image reference \"Foo:bar\": repository names must be lowercase"
        );
        assert_eq!(
            invalid[1].to_string(),
            "image list line \"a->b->c\": more than one \"->\": a line renames one image once"
        );
    }

    #[test]
    fn list_text_is_normalised() {
        let text = "\u{feff}# mirror list\r\n\r\n  alpine:3.11  \r\n\tns/app\t->\tx:1 # renamed\r\nredis:7#not-a-comment\n   \n# 中文注释\nlast";
        assert_eq!(
            parse_list(text).unwrap(),
            [
                "alpine:3.11",
                "ns/app->x:1",
                "redis:7#not-a-comment",
                "last"
            ]
        );
        assert_eq!(parse_list("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_list("\n# only a comment\n").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_characters_reject_the_whole_list_naming_lines() {
        let text = "alpine:3.11\nalpine\u{ff1a}3.12\nok\nbad\u{7}bell\r\nstray\rcr";
        let error = parse_list(text).unwrap_err();
        assert_eq!(
            error,
            PlanError::InvalidCharacters(vec![
                BadCharacter {
                    line: 2,
                    character: '\u{ff1a}'
                },
                BadCharacter {
                    line: 4,
                    character: '\u{7}'
                },
                BadCharacter {
                    line: 5,
                    character: '\r'
                },
            ])
        );
        assert_eq!(
            error.to_string(),
            "the image list has characters that are not printable ASCII: \
             line 2 has U+FF1A, line 4 has U+0007, line 5 has U+000D"
        );
    }

    #[test]
    fn endpoints_parse_from_config_values() {
        let cases = [
            ("http://10.45.80.1", "10.45.80.1", ""),
            ("https://harbor.local/proj/", "harbor.local", "proj"),
            ("reg2:5000/mirror/team", "reg2:5000", "mirror/team"),
            ("localhost:5000", "localhost:5000", ""),
        ];
        for (text, host, path_prefix) in cases {
            let parsed = endpoint(text);
            assert_eq!(
                (parsed.host.as_str(), parsed.path_prefix.as_str()),
                (host, path_prefix),
                "{text}"
            );
        }
        assert_eq!(
            endpoint("https://harbor.local/proj/").to_string(),
            "harbor.local/proj"
        );
        for text in ["", "http://", "bad_host", "reg.io/Proj"] {
            assert!(text.parse::<RegistryAddress>().is_err(), "{text:?}");
        }
    }
}
