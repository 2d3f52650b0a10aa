//! Image references as Docker writes them: `host:5000/ns/repo:tag`, `repo`, `ns/repo@sha256:…`.
//!
//! Image lists, config files and bundle keys all name images this way. Parsing with the
//! distribution grammar and Docker's host rule means a name that works with `docker pull` works
//! here, and a name Docker would refuse is refused up front with a sentence saying what is wrong,
//! instead of surfacing later as a 404 from some registry.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The tag a reference gets when it names neither a tag nor a digest, as in Docker.
pub const DEFAULT_TAG: &str = "latest";

/// The distribution spec's limit on a full name (host included).
const MAX_NAME_LENGTH: usize = 255;
const MAX_TAG_LENGTH: usize = 128;

/// The Docker Hub names that all mean the same registry, where one-segment repositories live
/// under `library/`.
const DOCKER_HUB_HOSTS: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// What a manifest is addressed by within a repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Tag(String),
    Digest(Digest),
}

impl Target {
    /// The `latest` tag.
    pub fn default_tag() -> Target {
        Target::Tag(DEFAULT_TAG.to_string())
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            Target::Tag(tag) => Some(tag),
            Target::Digest(_) => None,
        }
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Target::Tag(_) => None,
            Target::Digest(digest) => Some(digest),
        }
    }

    /// The character that joins a repository and this target in a reference.
    pub fn separator(&self) -> char {
        match self {
            Target::Tag(_) => ':',
            Target::Digest(_) => '@',
        }
    }
}

/// Shows the bare tag or digest, which is also what goes into a `/manifests/<target>` URL.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(tag) => f.write_str(tag),
            Target::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

/// A parsed image reference.
///
/// It is kept as written: no registry is filled in and Docker Hub's `library/` is not added,
/// because image lists replace the host anyway and `Display` must give the same text back.
/// `repo:tag@sha256:…` keeps only the digest: the tag is checked and then dropped, as
/// `docker pull` does, since the digest alone decides which manifest is meant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, when the text started with one (see [`split_host`]).
    pub registry: Option<String>,
    /// The path within the registry, e.g. `library/alpine`.
    pub repository: String,
    pub target: Target,
}

impl Reference {
    /// Parses `text`, using `default_target` when it names neither a tag nor a digest.
    ///
    /// A rename such as `repo@sha256:… -> other` needs this: the new name should keep the
    /// source's digest rather than fall back to `latest`.
    pub fn parse_or(text: &str, default_target: Target) -> Result<Reference, InvalidReference> {
        let invalid = |problem| InvalidReference {
            text: text.to_string(),
            problem,
        };
        if text.is_empty() {
            return Err(invalid(ReferenceProblem::Empty));
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|_| invalid(ReferenceProblem::InvalidDigest(digest.to_string())))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let (registry, path_and_tag) = split_host(name_and_tag);
        if let Some(host) = registry {
            check_host(host).map_err(invalid)?;
        }
        // A ':' followed by a '/' belongs to the path, not to a tag; check_repository rejects it.
        let (repository, tag) = match path_and_tag.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (path_and_tag, None),
        };
        check_repository(repository).map_err(invalid)?;
        let full_length = registry.map_or(0, |host| host.len() + 1) + repository.len();
        if full_length > MAX_NAME_LENGTH {
            return Err(invalid(ReferenceProblem::NameTooLong(full_length)));
        }
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        let target = match (digest, tag) {
            (Some(digest), _) => Target::Digest(digest),
            (None, Some(tag)) => Target::Tag(tag.to_string()),
            (None, None) => default_target,
        };
        Ok(Reference {
            registry: registry.map(str::to_string),
            repository: repository.to_string(),
            target,
        })
    }
}

/// Parses a reference; a missing tag becomes `latest`.
impl FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(text: &str) -> Result<Reference, InvalidReference> {
        Reference::parse_or(text, Target::default_tag())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        write!(
            f,
            "{}{}{}",
            self.repository,
            self.target.separator(),
            self.target
        )
    }
}

/// Why a text is not an image reference, naming the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {text:?}: {problem}")]
pub struct InvalidReference {
    pub text: String,
    pub problem: ReferenceProblem,
}

/// What is wrong with a reference, or with one of its parts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("it is empty")]
    Empty,
    #[error("it names no repository")]
    MissingRepository,
    #[error("{0:?} is not a valid registry host (host name or IP address, optionally with :port)")]
    InvalidHost(String),
    #[error("repository names must be lowercase")]
    Uppercase,
    #[error("the repository path has an empty component (a doubled, leading or trailing '/')")]
    EmptyComponent,
    #[error(
        "{0:?} is not a valid repository path component: use lowercase letters and digits, \
         separated by single '.', '_', '__' or dashes"
    )]
    InvalidComponent(String),
    #[error("a ':' may only start the tag or a registry port")]
    MisplacedColon,
    #[error("the name is {0} characters long; at most 255 are allowed")]
    NameTooLong(usize),
    #[error(
        "tag {0:?} is not valid: use 1 to 128 letters, digits, '_', '.' and '-', \
         not starting with '.' or '-'"
    )]
    InvalidTag(String),
    #[error("digest {0:?} is not valid: expected sha256:<64 hex characters>")]
    InvalidDigest(String),
}

/// Splits off the registry host, deciding as Docker does: the first `/`-separated segment is a
/// host when it contains `.` or `:` or is `localhost`; otherwise it is part of the repository
/// (`library/alpine`, `myteam/app`).
pub fn split_host(text: &str) -> (Option<&str>, &str) {
    match text.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, text),
    }
}

/// Whether `host` is one of Docker Hub's names.
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS
        .iter()
        .any(|hub| hub.eq_ignore_ascii_case(host))
}

/// Checks a repository path such as `library/alpine` against the distribution grammar: `/`-separated
/// components of lowercase letters and digits, joined inside a component by `.`, `_`, `__` or
/// runs of `-`.
pub fn check_repository(repository: &str) -> Result<(), ReferenceProblem> {
    if repository.is_empty() {
        return Err(ReferenceProblem::MissingRepository);
    }
    if repository.len() > MAX_NAME_LENGTH {
        return Err(ReferenceProblem::NameTooLong(repository.len()));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceProblem::EmptyComponent);
        }
        if component.contains(':') {
            return Err(ReferenceProblem::MisplacedColon);
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceProblem::Uppercase);
        }
        if !is_path_component(component.as_bytes()) {
            return Err(ReferenceProblem::InvalidComponent(component.to_string()));
        }
    }
    Ok(())
}

/// Checks `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6 address.
pub fn check_host(host: &str) -> Result<(), ReferenceProblem> {
    let invalid = || ReferenceProblem::InvalidHost(host.to_string());
    let (name_valid, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let address_valid = !address.is_empty()
            && address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        (address_valid, port)
    } else {
        let (name, port) = match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        };
        (
            !name.is_empty() && name.split('.').all(is_domain_label),
            port,
        )
    };
    let port_valid = port.is_none_or(|port| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    });
    if name_valid && port_valid {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = match tag.as_bytes() {
        [first, rest @ ..] => {
            tag.len() <= MAX_TAG_LENGTH
                && word(*first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        [] => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ReferenceProblem::InvalidTag(tag.to_string()))
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, written out to avoid a regex dependency.
fn is_path_component(bytes: &[u8]) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < bytes.len() && alphanumeric(bytes[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn is_domain_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    #[test]
    fn parses_valid_references() {
        let tag = |t: &str| Target::Tag(t.to_string());
        let cases: [(&str, Option<&str>, &str, Target, &str); 14] = [
            ("alpine", None, "alpine", tag("latest"), "alpine:latest"),
            ("alpine:3.11", None, "alpine", tag("3.11"), "alpine:3.11"),
            (
                "library/alpine:3",
                None,
                "library/alpine",
                tag("3"),
                "library/alpine:3",
            ),
            ("a/b/c:t", None, "a/b/c", tag("t"), "a/b/c:t"),
            (
                "host:5000/ns/repo:tag",
                Some("host:5000"),
                "ns/repo",
                tag("tag"),
                "host:5000/ns/repo:tag",
            ),
            (
                "localhost/x",
                Some("localhost"),
                "x",
                tag("latest"),
                "localhost/x:latest",
            ),
            (
                "localhost:5000/a/b:t",
                Some("localhost:5000"),
                "a/b",
                tag("t"),
                "localhost:5000/a/b:t",
            ),
            (
                "myreg:5000/x:1",
                Some("myreg:5000"),
                "x",
                tag("1"),
                "myreg:5000/x:1",
            ),
            (
                "10.45.80.21/public/alpine:3.11",
                Some("10.45.80.21"),
                "public/alpine",
                tag("3.11"),
                "10.45.80.21/public/alpine:3.11",
            ),
            (
                "[::1]:5000/x",
                Some("[::1]:5000"),
                "x",
                tag("latest"),
                "[::1]:5000/x:latest",
            ),
            (
                "my-Host.example.com/a__b.c--d_e:_T.x-1",
                Some("my-Host.example.com"),
                "a__b.c--d_e",
                tag("_T.x-1"),
                "my-Host.example.com/a__b.c--d_e:_T.x-1",
            ),
            (
                &format!("ns/repo@sha256:{HEX}"),
                None,
                "ns/repo",
                Target::Digest(digest()),
                &format!("ns/repo@sha256:{HEX}"),
            ),
            (
                &format!("repo:tag@sha256:{HEX}"),
                None,
                "repo",
                Target::Digest(digest()),
                &format!("repo@sha256:{HEX}"),
            ),
            (
                "localhost",
                None,
                "localhost",
                tag("latest"),
                "localhost:latest",
            ),
        ];
        for (text, registry, repository, target, display) in cases {
            let reference: Reference = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(reference.registry.as_deref(), registry, "{text}");
            assert_eq!(reference.repository, repository, "{text}");
            assert_eq!(reference.target, target, "{text}");
            assert_eq!(reference.to_string(), display, "{text}");
            assert_eq!(
                display.parse::<Reference>().unwrap(),
                reference,
                "{text} round trip"
            );
        }
    }

    #[test]
    fn rejects_invalid_references_saying_why() {
        use ReferenceProblem as P;
        let long_tag = "t".repeat(129);
        let long_name = format!("a/{}", "b".repeat(254));
        let cases = [
            ("", P::Empty),
            ("Foo/Bar:x", P::Uppercase),
            ("Foo:bar", P::Uppercase),
            ("a:b:c", P::MisplacedColon),
            ("x/a:b/c", P::MisplacedColon),
            ("reg.io/", P::MissingRepository),
            (":tag", P::MissingRepository),
            ("a//b", P::EmptyComponent),
            ("a/", P::EmptyComponent),
            ("a..b", P::InvalidComponent("a..b".into())),
            ("-a", P::InvalidComponent("-a".into())),
            ("a_", P::InvalidComponent("a_".into())),
            ("a___b", P::InvalidComponent("a___b".into())),
            ("a b", P::InvalidComponent("a b".into())),
            ("alpine:", P::InvalidTag("".into())),
            ("alpine:.x", P::InvalidTag(".x".into())),
            (
                &format!("alpine:{long_tag}"),
                P::InvalidTag(long_tag.clone()),
            ),
            (&long_name, P::NameTooLong(256)),
            ("alpine@sha256:abc", P::InvalidDigest("sha256:abc".into())),
            ("alpine@", P::InvalidDigest("".into())),
            ("bad_host.io/x", P::InvalidHost("bad_host.io".into())),
            ("reg.io:99999/x", P::InvalidHost("reg.io:99999".into())),
            ("reg.io:/x", P::InvalidHost("reg.io:".into())),
            ("-reg.io/x", P::InvalidHost("-reg.io".into())),
            ("[::1/x", P::InvalidHost("[::1".into())),
        ];
        for (text, problem) in cases {
            let error = text.parse::<Reference>().unwrap_err();
            assert_eq!(error.text, text);
            assert_eq!(error.problem, problem, "{text}");
        }
    }

    #[test]
    fn error_message_names_the_text_and_the_problem() {
        let error = "Foo/Bar:x".parse::<Reference>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"invalid image reference "Foo/Bar:x": repository names must be lowercase"#
        );
    }

    #[test]
    fn default_target_applies_only_without_tag_or_digest() {
        let by_digest = Target::Digest(digest());
        let bare = Reference::parse_or("mine", by_digest.clone()).unwrap();
        assert_eq!(bare.target, by_digest);
        let tagged = Reference::parse_or("mine:v1", by_digest).unwrap();
        assert_eq!(tagged.target, Target::Tag("v1".into()));
    }

    #[test]
    fn host_is_the_first_segment_only_when_docker_says_so() {
        let cases = [
            ("alpine:3.11", None, "alpine:3.11"),
            ("library/alpine", None, "library/alpine"),
            ("localhost/x", Some("localhost"), "x"),
            ("localhost", None, "localhost"),
            ("myreg:5000/x:1", Some("myreg:5000"), "x:1"),
            ("a.b/c/d", Some("a.b"), "c/d"),
            ("localhostx/y", None, "localhostx/y"),
        ];
        for (text, host, rest) in cases {
            assert_eq!(split_host(text), (host, rest), "{text}");
        }
    }

    #[test]
    fn recognises_docker_hub_names() {
        for host in DOCKER_HUB_HOSTS {
            assert!(is_docker_hub(host));
        }
        assert!(is_docker_hub("Docker.IO"));
        assert!(!is_docker_hub("hub.docker.com"));
        assert!(!is_docker_hub("docker.io:5000"));
    }
}
