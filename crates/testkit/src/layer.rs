//! Image layers for tests: real gzip-compressed tar archives whose content is pseudo-random but
//! fully determined by a seed, so the same call always yields the same digest and two seeds never
//! share content (which would let a registry deduplicate what a test means to transfer).

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sha256_digest;

/// A gzip-compressed tar layer holding one file of pseudo-random bytes.
#[derive(Clone)]
pub struct Layer {
    bytes: Vec<u8>,
    digest: String,
    diff_id: String,
}

impl Layer {
    /// A layer with one regular file of `size` bytes generated from `seed`.
    ///
    /// The same `(seed, size)` always gives byte-identical layers, so tests can predict digests
    /// and share layers between images on purpose.
    pub fn random(seed: u64, size: usize) -> Layer {
        let mut content = vec![0; size];
        fastrand::Rng::with_seed(seed).fill(&mut content);

        // Fixed owner, mode and time: the archive must depend on the seed and size alone.
        let mut header = tar::Header::new_ustar();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        let mut archive = tar::Builder::new(Vec::new());
        archive
            .append_data(
                &mut header,
                format!("testkit/{seed}-{size}.bin"),
                content.as_slice(),
            )
            .unwrap();
        Layer::gzipped(archive.into_inner().unwrap())
    }

    /// A layer whose digests are right but whose content, once unzipped, is not a tar archive:
    /// registries and digest checks accept it, a container engine cannot unpack it.
    pub fn not_a_tar(seed: u64, size: usize) -> Layer {
        let mut content = vec![0; size];
        fastrand::Rng::with_seed(seed).fill(&mut content);
        Layer::gzipped(content)
    }

    fn gzipped(uncompressed: Vec<u8>) -> Layer {
        // Random bytes do not compress, so the fastest level costs nothing in size.
        let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
        gzip.write_all(&uncompressed).unwrap();
        let bytes = gzip.finish().unwrap();
        Layer {
            digest: sha256_digest(&bytes),
            diff_id: sha256_digest(&uncompressed),
            bytes,
        }
    }

    /// The compressed layer, exactly as pushed to a registry.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `sha256:` digest of [`bytes`](Self::bytes): the layer's blob digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The `sha256:` digest of the uncompressed tar, as an image config's `rootfs.diff_ids` lists it.
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    #[test]
    fn same_seed_and_size_give_the_same_layer() {
        let first = Layer::random(7, 10_000);
        let second = Layer::random(7, 10_000);
        assert_eq!(first.bytes(), second.bytes());
        assert_eq!(first.digest(), second.digest());
    }

    #[test]
    fn different_seeds_give_different_layers() {
        assert_ne!(
            Layer::random(1, 1000).digest(),
            Layer::random(2, 1000).digest()
        );
    }

    #[test]
    fn layer_is_a_gzip_tar_with_one_file_of_the_requested_size() {
        let layer = Layer::random(3, 4321);
        assert_eq!(layer.digest(), sha256_digest(layer.bytes()));

        let mut tar = Vec::new();
        GzDecoder::new(layer.bytes()).read_to_end(&mut tar).unwrap();
        assert_eq!(layer.diff_id(), sha256_digest(&tar));

        let mut archive = tar::Archive::new(tar.as_slice());
        let sizes: Vec<u64> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().header().size().unwrap())
            .collect();
        assert_eq!(sizes, [4321]);
    }
}
