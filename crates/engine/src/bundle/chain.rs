//! An incremental bundle read together with the bundles it builds on, as one source. Uploading
//! an increment can leave its missing blobs to the target, which has them from the base; a
//! container engine has no such memory, so loading an increment needs every blob in hand:
//! the increment's own, then its bases'.

use async_trait::async_trait;
use registry::Digest;
use registry::manifest::Descriptor;

use crate::bundle::reader::BundleReader;
use crate::error::Result;
use crate::transport::{ByteStream, ImageSource, Manifest};

pub struct BundleChain {
    /// The bundle whose images are read first, then its bases.
    bundles: Vec<BundleReader>,
}

impl BundleChain {
    /// `top` is the bundle images are listed from; `bases` hold the blobs it leaves out.
    pub fn new(top: BundleReader, bases: Vec<BundleReader>) -> BundleChain {
        BundleChain {
            bundles: std::iter::once(top).chain(bases).collect(),
        }
    }

    fn top(&self) -> &BundleReader {
        &self.bundles[0]
    }

    fn carrier(&self, digest: &Digest) -> &BundleReader {
        self.carrier_of(digest).unwrap_or_else(|| self.top())
    }

    /// The first bundle of the chain whose data files hold the blob.
    pub fn carrier_of(&self, digest: &Digest) -> Option<&BundleReader> {
        self.bundles.iter().find(|bundle| bundle.carries(digest))
    }

    /// The bundles, the top first.
    pub fn bundles(&self) -> &[BundleReader] {
        &self.bundles
    }
}

#[async_trait]
impl ImageSource for BundleChain {
    fn describe(&self) -> String {
        self.top().describe()
    }

    fn carries(&self, digest: &Digest) -> bool {
        self.bundles.iter().any(|bundle| bundle.carries(digest))
    }

    fn may_lack_blobs(&self) -> bool {
        self.bundles.iter().any(|bundle| {
            bundle.meta().referenced_blobs().into_keys().any(|hex| {
                Digest::from_hex(&hex).is_ok_and(|digest| !ImageSource::carries(self, &digest))
            })
        })
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let mut first_error = None;
        for bundle in &self.bundles {
            match bundle.manifest(repository, reference).await {
                Ok(manifest) => return Ok(manifest),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.expect("a chain holds at least its top bundle"))
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        self.carrier(&descriptor.digest)
            .blob(repository, descriptor)
            .await
    }

    fn blob_origin(&self, digest: &Digest) -> Option<String> {
        self.carrier(digest).blob_origin(digest)
    }
}
