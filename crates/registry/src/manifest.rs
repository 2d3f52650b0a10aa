//! Manifest media types and the few fields of a manifest the tool reads.
//!
//! Manifests are copied as raw bytes; these types only look inside them to find blobs and
//! children, so unknown fields are ignored and nothing is ever re-serialised from them.

use serde::Deserialize;

use crate::Digest;
use crate::error::{Error, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The Accept header for manifest requests: every type we can handle, plus schema 1 so that we
/// can recognise it and refuse it with a clear message instead of a 404.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// A reference to a blob or a child manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`, as users write it.
    pub fn label(&self) -> String {
        match &self.variant {
            Some(variant) if !variant.is_empty() => {
                format!("{}/{}/{variant}", self.os, self.architecture)
            }
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An image manifest (Docker schema 2 or OCI): a config and layers.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    /// Config first, then the layers: the order the original used and the order a target
    /// needs them in before the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexManifest {
    pub manifests: Vec<Descriptor>,
}

/// A manifest, parsed by kind.
#[derive(Debug, Clone)]
pub enum ParsedManifest {
    Image(ImageManifest),
    Index(IndexManifest),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Works out the media type of manifest bytes: the one the registry sent, or the one the JSON
/// states, or the shape of the JSON (OCI allows omitting `mediaType`).
pub fn detect_media_type(header: Option<&str>, bytes: &[u8], reference: &str) -> Result<String> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
        reference: reference.to_string(),
        detail: e.to_string(),
    })?;
    if probe.schema_version == Some(1) {
        return Err(Error::Schema1 {
            reference: reference.to_string(),
        });
    }
    let header = header
        .map(|h| h.split(';').next().unwrap_or(h).trim())
        .filter(|h| !h.is_empty() && *h != "application/json" && *h != "text/plain");
    if let Some(media_type) = probe.media_type.as_deref().or(header) {
        return Ok(media_type.to_string());
    }
    if probe.manifests.is_some() {
        Ok(OCI_INDEX.to_string())
    } else if probe.config.is_some() {
        Ok(OCI_MANIFEST.to_string())
    } else {
        Err(Error::InvalidManifest {
            reference: reference.to_string(),
            detail: "neither an image manifest nor an index".to_string(),
        })
    }
}

/// More layers than any real image has (real ones have tens; the largest seen, a few hundred):
/// a manifest past it is refused before a single blob is asked for.
pub const MAX_LAYERS: usize = 10_000;
/// More entries than any real index has (platforms and their attestations: tens).
pub const MAX_INDEX_ENTRIES: usize = 10_000;

pub fn parse(media_type: &str, bytes: &[u8], reference: &str) -> Result<ParsedManifest> {
    let invalid = |e: serde_json::Error| Error::InvalidManifest {
        reference: reference.to_string(),
        detail: e.to_string(),
    };
    let absurd = |count: usize, limit: usize, index: bool| Error::AbsurdManifest {
        reference: reference.to_string(),
        count,
        limit,
        index,
    };
    match media_type {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let image: ImageManifest = serde_json::from_slice(bytes).map_err(invalid)?;
            if image.layers.len() > MAX_LAYERS {
                return Err(absurd(image.layers.len(), MAX_LAYERS, false));
            }
            Ok(ParsedManifest::Image(image))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let index: IndexManifest = serde_json::from_slice(bytes).map_err(invalid)?;
            if index.manifests.len() > MAX_INDEX_ENTRIES {
                return Err(absurd(index.manifests.len(), MAX_INDEX_ENTRIES, true));
            }
            Ok(ParsedManifest::Index(index))
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(Error::Schema1 {
            reference: reference.to_string(),
        }),
        other => Err(Error::UnsupportedManifest {
            reference: reference.to_string(),
            media_type: other.to_string(),
        }),
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// Rewrites an index to keep only the children whose digests are in `keep`, leaving every
/// other field as it was. The result is new bytes with a new digest, by necessity.
pub fn filter_index(bytes: &[u8], keep: &[Digest], reference: &str) -> Result<Vec<u8>> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
            reference: reference.to_string(),
            detail: e.to_string(),
        })?;
    if let Some(children) = value
        .get_mut("manifests")
        .and_then(serde_json::Value::as_array_mut)
    {
        children.retain(|child| {
            child
                .get("digest")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|digest| keep.iter().any(|k| k.as_str() == digest))
        });
    }
    serde_json::to_vec_pretty(&value).map_err(|e| Error::InvalidManifest {
        reference: reference.to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":10,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}],
      "annotations":{"a":"b"}}"#;

    #[test]
    fn detects_types_from_header_field_or_shape() {
        assert_eq!(
            detect_media_type(None, INDEX.as_bytes(), "x").unwrap(),
            OCI_INDEX
        );
        let bare = br#"{"schemaVersion":2,"config":{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},"layers":[]}"#;
        assert_eq!(detect_media_type(None, bare, "x").unwrap(), OCI_MANIFEST);
        assert_eq!(
            detect_media_type(Some(DOCKER_MANIFEST), bare, "x").unwrap(),
            DOCKER_MANIFEST
        );
        let schema1 = br#"{"schemaVersion":1,"name":"a","fsLayers":[]}"#;
        assert!(matches!(
            detect_media_type(None, schema1, "a:1"),
            Err(Error::Schema1 { .. })
        ));
    }

    #[test]
    fn filtering_an_index_keeps_other_fields() {
        let keep = [
            "sha256:2222222222222222222222222222222222222222222222222222222222222222"
                .parse()
                .unwrap(),
        ];
        let filtered = filter_index(INDEX.as_bytes(), &keep, "x").unwrap();
        let ParsedManifest::Index(index) = parse(OCI_INDEX, &filtered, "x").unwrap() else {
            panic!("not an index");
        };
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(
            index.manifests[0].platform.as_ref().unwrap().label(),
            "linux/arm/v7"
        );
        let value: serde_json::Value = serde_json::from_slice(&filtered).unwrap();
        assert_eq!(value["annotations"]["a"], "b");
    }
}
