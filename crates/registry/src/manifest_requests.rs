//! Manifest and tag operations on a [`Registry`].

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK};
use reqwest::{Method, StatusCode};

use crate::Digest;
use crate::auth::Scope;
use crate::client::Registry;
use crate::error::{Error, Result};
use crate::manifest::{ACCEPT_MANIFESTS, detect_media_type};

/// Manifest bytes exactly as the registry served them.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// Largest manifest accepted; the distribution spec recommends registries accept 4 MiB.
const MAX_MANIFEST: usize = 4 << 20;
/// One page of a tag list or the catalog: real pages hold at most a few thousand names, and a
/// registry that does not paginate at all sends 100,000 tags in ~4 MiB.
const MAX_PAGE: usize = 16 << 20;
/// Pages of one listing: 10,000 pages of the usual 100 to 1,000 names is more than any
/// repository holds.
const MAX_PAGES: usize = 10_000;
/// Names in one listing, and their bytes: far beyond any real repository's tags or registry's
/// catalog, and a bound on what a listing that never ends can make us hold (~30 MiB).
const MAX_NAMES: usize = 250_000;
const MAX_NAME_BYTES: usize = 16 << 20;

impl Registry {
    /// Fetches a manifest by tag or digest. The bytes are verified against the digest asked
    /// for, or else against the digest the registry announces.
    pub async fn get_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        self.retry_reads(|| self.fetch_manifest(repository, reference))
            .await
    }

    async fn fetch_manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let path = format!("{repository}/manifests/{reference}");
        let response = self
            .send(Method::GET, &path, &[Scope::pull(repository)], &|r| {
                r.header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            let separator = if reference.contains(':') { '@' } else { ':' };
            return Err(Error::ManifestNotFound {
                host: self.host().to_string(),
                reference: format!("{repository}{separator}{reference}"),
            });
        }
        if response.status() != StatusCode::OK {
            return Err(self
                .unexpected(response, "GET", repository, || {
                    format!("manifest {repository}:{reference}")
                })
                .await);
        }
        let header = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let announced: Option<Digest> = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let Some(bytes) = self.body_within(response, MAX_MANIFEST).await? else {
            return Err(Error::InvalidManifest {
                reference: format!("{repository}:{reference}"),
                detail: format!(
                    "it is larger than any real manifest (over {} MiB)",
                    MAX_MANIFEST >> 20
                ),
            });
        };
        let digest = Digest::of(&bytes);
        if let Some(expected) = reference.parse::<Digest>().ok().or(announced)
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
                bytes: bytes.len() as u64,
            });
        }
        let full_reference = format!("{}/{repository}:{reference}", self.host());
        let media_type = detect_media_type(header.as_deref(), &bytes, &full_reference)?;
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest a tag points to, or None if the manifest is absent. A HEAD does not count
    /// against pull quotas. `for_push` asks with push scope, so a target's one token serves
    /// this and the pushes that follow.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
        for_push: bool,
    ) -> Result<Option<Digest>> {
        let path = format!("{repository}/manifests/{reference}");
        let scope = if for_push {
            Scope::push(repository)
        } else {
            Scope::pull(repository)
        };
        let response = self
            .send(Method::HEAD, &path, &[scope], &|r| {
                r.header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {
                let announced = response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match announced {
                    Some(digest) => Ok(Some(digest)),
                    // Not every registry announces it; the bytes tell.
                    None => Ok(Some(self.get_manifest(repository, reference).await?.digest)),
                }
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self
                .unexpected(response, "HEAD", repository, || path.clone())
                .await),
        }
    }

    /// Pushes manifest bytes unchanged under a tag or digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &Bytes,
        media_type: &str,
    ) -> Result<()> {
        let path = format!("{repository}/manifests/{reference}");
        let response = self
            .send(Method::PUT, &path, &[Scope::push(repository)], &|r| {
                r.header(CONTENT_TYPE, media_type).body(bytes.clone())
            })
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self
                .unexpected(response, "PUT", repository, || {
                    format!("manifest {repository}:{reference}")
                })
                .await)
        }
    }

    /// Every tag of a repository, following `Link` pagination.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let subject = format!("repository {repository}");
        self.list_paged(
            format!("{repository}/tags/list?n=1000"),
            &[Scope::pull(repository)],
            repository,
            "tags",
            &subject,
            usize::MAX,
        )
        .await
    }

    /// The registry's repositories from its catalog (`/v2/_catalog`), up to `limit` of them.
    /// Many registries restrict or disable the catalog; callers treat an error as "unknown".
    pub async fn list_repositories(&self, limit: usize) -> Result<Vec<String>> {
        self.list_paged(
            "_catalog?n=1000".to_string(),
            &[],
            "",
            "repositories",
            "the catalog",
            limit,
        )
        .await
    }

    /// The names a paged list answers with under `field`, following `Link` pagination, up to
    /// `limit` of them.
    async fn list_paged(
        &self,
        first: String,
        scopes: &[Scope],
        repository: &str,
        field: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut name_bytes = 0;
        let mut next = Some(first);
        // A `next` link back to a page already read would never end the listing. Links are
        // remembered by hash: a hostile registry's links may be long.
        let mut read = std::collections::HashSet::new();
        let page_hasher = std::collections::hash_map::RandomState::new();
        let never_ends = || Error::Protocol {
            host: self.host().to_string(),
            detail: format!(
                "{subject}: the registry's pages never end (page links loop, or pass \
                 {MAX_PAGES} pages or {MAX_NAMES} names)"
            ),
        };
        while let Some(path) = next.take()
            && names.len() < limit
        {
            let key = std::hash::BuildHasher::hash_one(&page_hasher, &path);
            if !read.insert(key) || read.len() > MAX_PAGES {
                return Err(never_ends());
            }
            let (page, following) = self
                .retry_reads(|| self.fetch_page(&path, scopes, repository, field, subject))
                .await?;
            name_bytes += page.iter().map(String::len).sum::<usize>();
            names.extend(page);
            if names.len() > MAX_NAMES || name_bytes > MAX_NAME_BYTES {
                return Err(never_ends());
            }
            next = following;
        }
        names.truncate(limit);
        Ok(names)
    }

    /// One page of a list and the path of the next page, if any.
    async fn fetch_page(
        &self,
        path: &str,
        scopes: &[Scope],
        repository: &str,
        field: &str,
        subject: &str,
    ) -> Result<(Vec<String>, Option<String>)> {
        let response = self.send(Method::GET, path, scopes, &|r| r).await?;
        if response.status() != StatusCode::OK {
            return Err(self
                .unexpected(response, "GET", repository, || subject.to_string())
                .await);
        }
        let next = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let protocol = |detail: String| Error::Protocol {
            host: self.host().to_string(),
            detail: format!("{subject}: {detail}"),
        };
        let body = self
            .body_within(response, MAX_PAGE)
            .await?
            .ok_or_else(|| protocol(format!("a page is larger than {} MiB", MAX_PAGE >> 20)))?;
        let page: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))?;
        let names = match &page[field] {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| protocol(format!("{field} holds a value that is not text")))?,
            _ => return Err(protocol(format!("{field} is not a list"))),
        };
        Ok((names, next))
    }
}

/// The target of a `Link: </v2/x/tags/list?last=a&n=1>; rel="next"` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn reads_the_next_page_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=t&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=t&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
