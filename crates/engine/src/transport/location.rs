//! Where a job reads or writes, as a person names it on the command line: a registry (a cfg.yaml
//! entry's name or an address) or a transport reference such as `oci:DIR`, as containers/image
//! names them. Parsing only: opening a location is the caller's, which knows cfg.yaml.

use std::fmt;
use std::path::PathBuf;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A registry: a cfg.yaml entry's name or an address (`host[:port][/prefix]`, with or
    /// without `http://`; `docker://` is removed).
    Registry(String),
    /// `bundle:PATH`: a bundle's meta file (or one-file archive) to read, or a folder to write
    /// a new bundle into.
    Bundle(PathBuf),
    /// `oci:DIR`: an OCI image layout directory.
    OciLayout(PathBuf),
    /// `oci-archive:FILE`: an OCI image layout in one tar.
    OciArchive(PathBuf),
    /// `docker-archive:FILE`: what `docker save` writes and `docker load` reads.
    DockerArchive(PathBuf),
    /// `docker-daemon:[ADDRESS]`, or `docker`: the Docker Engine API (Podman's too).
    DockerDaemon { address: Option<String> },
    /// `containerd:[NAMESPACE]`, or `ctr` / `containerd`: containerd through `ctr`.
    Containerd { namespace: Option<String> },
}

/// Why a location cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("{transport}: needs a path after the colon")]
    MissingPath { transport: &'static str },
    #[error("{name}: is not a transport this tool knows")]
    UnknownTransport { name: String },
}

/// Makes a location from the path after a transport's colon.
type FromPath = fn(PathBuf) -> Location;

/// The transports with a path after their colon, by prefix.
const FILE_TRANSPORTS: [(&str, FromPath); 4] = [
    ("bundle", Location::Bundle),
    ("oci", Location::OciLayout),
    ("oci-archive", Location::OciArchive),
    ("docker-archive", Location::DockerArchive),
];

/// Every transport prefix, for messages that list them.
pub const TRANSPORTS: [&str; 7] = [
    "docker://",
    "bundle:",
    "oci:",
    "oci-archive:",
    "docker-archive:",
    "docker-daemon:",
    "containerd:",
];

impl Location {
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        let text = text.trim();
        if let Some(address) = text.strip_prefix("docker://") {
            return Ok(Location::Registry(address.to_string()));
        }
        // The engines by the bare names `load --to` has always taken.
        match text.to_ascii_lowercase().as_str() {
            "docker" | "docker-daemon" => return Ok(Location::DockerDaemon { address: None }),
            "ctr" | "containerd" => return Ok(Location::Containerd { namespace: None }),
            _ => {}
        }
        let Some((prefix, rest)) = text.split_once(':') else {
            return Ok(Location::Registry(text.to_string()));
        };
        if let Some((transport, make)) = FILE_TRANSPORTS.iter().find(|(name, _)| *name == prefix) {
            if rest.trim().is_empty() {
                return Err(LocationError::MissingPath { transport });
            }
            return Ok(make(PathBuf::from(rest)));
        }
        let optional = |rest: &str| Some(rest.to_string()).filter(|rest| !rest.is_empty());
        match prefix {
            "docker-daemon" => Ok(Location::DockerDaemon {
                address: optional(rest),
            }),
            "containerd" => Ok(Location::Containerd {
                namespace: optional(rest),
            }),
            _ if looks_like_transport(prefix, rest) => Err(LocationError::UnknownTransport {
                name: prefix.to_string(),
            }),
            // `host:port`, `http://host`: an address.
            _ => Ok(Location::Registry(text.to_string())),
        }
    }

    /// Whether images can be read from here: a container engine only takes them.
    pub fn is_readable(&self) -> bool {
        !self.is_engine()
    }

    /// Docker or containerd: takes whole images, one archive each.
    pub fn is_engine(&self) -> bool {
        matches!(
            self,
            Location::DockerDaemon { .. } | Location::Containerd { .. }
        )
    }
}

/// `word:rest` is a transport reference (a mistyped or unknown one) rather than an address:
/// the word is letters and dashes, longer than a drive letter, and what follows is not a port
/// (`host:5000`) nor a URL's `//` (`http://host`).
fn looks_like_transport(prefix: &str, rest: &str) -> bool {
    prefix.len() > 1
        && prefix.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
        && !rest.starts_with("//")
        && !rest.starts_with(|c: char| c.is_ascii_digit())
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry(name) => f.write_str(name),
            Location::Bundle(path) => write!(f, "bundle:{}", path.display()),
            Location::OciLayout(path) => write!(f, "oci:{}", path.display()),
            Location::OciArchive(path) => write!(f, "oci-archive:{}", path.display()),
            Location::DockerArchive(path) => write!(f, "docker-archive:{}", path.display()),
            Location::DockerDaemon { address } => {
                write!(f, "docker-daemon:{}", address.as_deref().unwrap_or(""))
            }
            Location::Containerd { namespace } => {
                write!(f, "containerd:{}", namespace.as_deref().unwrap_or(""))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Location {
        Location::parse(text).unwrap()
    }

    #[test]
    fn registries_by_name_or_address() {
        for text in [
            "harbor",
            "10.0.0.1:5000",
            "http://10.0.0.1:5000/team",
            "reg.local/proj",
            "localhost:5000",
        ] {
            assert_eq!(parse(text), Location::Registry(text.to_string()), "{text}");
        }
        assert_eq!(
            parse("docker://reg.local:5000/proj"),
            Location::Registry("reg.local:5000/proj".to_string())
        );
    }

    #[test]
    fn transports_with_paths() {
        assert_eq!(
            parse("bundle:data/x_meta.yaml"),
            Location::Bundle("data/x_meta.yaml".into())
        );
        assert_eq!(parse("oci:out"), Location::OciLayout("out".into()));
        assert_eq!(
            parse(r"oci-archive:C:\images\a.tar"),
            Location::OciArchive(r"C:\images\a.tar".into())
        );
        assert_eq!(
            parse("docker-archive:a.tar"),
            Location::DockerArchive("a.tar".into())
        );
        assert_eq!(
            Location::parse("oci:"),
            Err(LocationError::MissingPath { transport: "oci" })
        );
    }

    #[test]
    fn engines() {
        assert_eq!(parse("docker"), Location::DockerDaemon { address: None });
        assert_eq!(
            parse("docker-daemon:"),
            Location::DockerDaemon { address: None }
        );
        assert_eq!(
            parse("docker-daemon:unix:///run/podman/podman.sock"),
            Location::DockerDaemon {
                address: Some("unix:///run/podman/podman.sock".to_string())
            }
        );
        assert_eq!(parse("ctr"), Location::Containerd { namespace: None });
        assert_eq!(
            parse("containerd:k8s.io"),
            Location::Containerd {
                namespace: Some("k8s.io".to_string())
            }
        );
        assert!(!parse("containerd:").is_readable());
    }

    #[test]
    fn an_unknown_transport_is_named() {
        assert_eq!(
            Location::parse("oci-layout:dir"),
            Err(LocationError::UnknownTransport {
                name: "oci-layout".to_string()
            })
        );
        // A drive letter is not a transport; it is no registry either, which opening says.
        assert_eq!(parse(r"C:\x"), Location::Registry(r"C:\x".to_string()));
    }

    #[test]
    fn each_location_prints_as_it_parses() {
        for text in [
            "oci:out",
            "bundle:a/b",
            "docker-daemon:",
            "containerd:k8s.io",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }
}
