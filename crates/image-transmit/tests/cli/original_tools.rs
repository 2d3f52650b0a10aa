//! Every kind of bundle the original tools wrote (../shared/fixtures/original-tools, made by
//! the original Go program and its fork themselves): uploaded into a real registry and loaded
//! into Podman's Docker API, every image present, digests as the source had them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::TestRegistry;

use crate::bundle_support::{
    Meta, assert_served, assert_success, output_text, source_digests, upload,
};
use crate::common::{image_transmit, served_digest, workdir};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/original-tools"
);

/// A fixture file; a missing one fails the test, which must not pass by testing nothing.
#[track_caller]
pub(crate) fn fixture(path: &str) -> PathBuf {
    let path = Path::new(FIXTURES).join(path);
    assert!(
        path.is_file(),
        "the original tools' fixture {} is missing (the shared folder beside the repository)",
        path.display()
    );
    path
}

/// Uploads the metas in order into one fresh registry and checks every image of each.
fn uploads_byte_exact(metas: &[&str]) {
    let target = TestRegistry::start();
    for meta in metas {
        let meta = fixture(meta);
        let output = upload(&target.url(), &meta, &[]);
        assert_success(&output);
        assert_served(&target, &source_digests(&Meta::read(&meta)));
    }
}

#[test]
fn the_originals_tar_bundles_and_their_increments_upload_byte_exact() {
    uploads_byte_exact(&[
        "orig-tar/data/20261202/img_full_202612020153_meta.yaml",
        "orig-tar/data/20261202/img_incr_202612020153_meta.yaml",
    ]);
    // An increment of a repository the full bundle filled, its base meta kept elsewhere.
    uploads_byte_exact(&[
        "orig-tar/data/20261202/img_full_202612020153_meta.yaml",
        "orig-tar-incr-samerepo/data/20261202/img_incr_202612020155_meta.yaml",
    ]);
}

#[test]
fn the_originals_docker_single_file_uploads_byte_exact() {
    uploads_byte_exact(&["orig-docker-singlefile/data/20261202/img_full_202612020153_meta.yaml"]);
}

/// What the original's Windows GUI writes with compressor gzip, xz or lz4: each data file one
/// compressed stream over the whole tar.
#[test]
fn whole_stream_gzip_xz_and_lz4_bundles_upload_byte_exact_and_verify() {
    for kind in ["gzip", "xz", "lz4"] {
        let meta = format!("derived-{kind}/data/20261202/img_full_202612020153_meta.yaml");
        uploads_byte_exact(&[&meta]);
        let output = image_transmit(workdir().path())
            .args(["verify", fixture(&meta).to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&output);
        assert!(
            output_text(&output).contains("0 fault"),
            "{kind}: {}",
            output_text(&output)
        );
    }
}

/// A damaged compressed stream is a damaged data file: one sentence naming it, nothing pushed.
#[test]
fn a_damaged_whole_stream_bundle_is_refused_with_its_file_named() {
    let dir = workdir();
    let source = fixture("derived-xz/data/20261202/img_full_202612020153_meta.yaml");
    let source_dir = source.parent().unwrap();
    for entry in fs_err::read_dir(source_dir).unwrap() {
        let path = entry.unwrap().path();
        fs_err::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let damaged = dir.path().join("img_full_202612020153_1.xz");
    let mut bytes = fs_err::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs_err::write(&damaged, bytes).unwrap();
    let meta = dir.path().join("img_full_202612020153_meta.yaml");
    let target = TestRegistry::start();
    let output = upload(&target.url(), &meta, &[]);
    assert_ne!(output.status.code(), Some(0), "{}", output_text(&output));
    let text = output_text(&output);
    assert!(text.contains("img_full_202612020153_1.xz"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    for image in source_digests(&Meta::read(&meta)).keys() {
        let (repository, tag) = image.rsplit_once(':').unwrap();
        assert_eq!(served_digest(&target, repository, tag), None, "{image}");
    }
}

/// The source's digest of each image the fork saved, from the fixtures' record of the source.
fn fork_images(names: &[(&str, &str)]) -> BTreeMap<String, String> {
    names
        .iter()
        .map(|(image, digest)| (image.to_string(), digest.to_string()))
        .collect()
}

const IMG0: (&str, &str) = (
    "team/img0:latest",
    "sha256:1bea1c54dfc77b9d730ca1e84bba30b2a74db296a68731d66499901e4b63c70b",
);
const IMG1: (&str, &str) = (
    "team/img1:latest",
    "sha256:fc5e5bee037fccb7ebfb9037cca4f7820ba6a18f07c87b0c971687c818ead1a1",
);
const IMG2: (&str, &str) = (
    "team/img2:latest",
    "sha256:46c0ff35321e986314825427c085143f1c58d1bcfd84c1d0ae2576de64ce61ab",
);
const IMG0_V2: (&str, &str) = (
    "team/img0:v2",
    "sha256:1f685c837d5a429019b770af79af2034a7a4f54b1cb5c1d4bf81a88d1de31c8d",
);

const IMG3: (&str, &str) = (
    "team/img3:latest",
    "sha256:1f685c837d5a429019b770af79af2034a7a4f54b1cb5c1d4bf81a88d1de31c8d",
);
const IMG4: (&str, &str) = (
    "team/img4:latest",
    "sha256:5a9d3df46e542d5a87742a4d0d49b2690f9a606dbc86e80735ef45d13dcde25e",
);

/// The fork writes no meta: its bundle is one tar that is an OCI layout (and, by default, a
/// docker-save archive too, by hard links). It is uploaded by naming the tar.
#[test]
fn the_forks_oci_archives_upload_byte_exact_and_verify() {
    for (archive, images) in [
        (
            "fork-oci/full/data/20261202/img_full_202612020155_amd64.tar",
            fork_images(&[IMG0, IMG1, IMG2]),
        ),
        (
            "fork-both/full/data/20261202/img_full_202612020155_amd64.tar",
            fork_images(&[IMG0, IMG1, IMG2]),
        ),
    ] {
        let archive = fixture(archive);
        let target = TestRegistry::start();
        assert_success(&upload(&target.url(), &archive, &[]));
        assert_served(&target, &images);
        let output = image_transmit(workdir().path())
            .args(["verify", archive.to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&output);
        assert!(
            output_text(&output).contains("0 fault"),
            "{}",
            output_text(&output)
        );
    }
    // The fork's same-repository increment, on top of its full bundle.
    let target = TestRegistry::start();
    let full = fixture("fork-both/full/data/20261202/img_full_202612020155_amd64.tar");
    assert_success(&upload(&target.url(), &full, &[]));
    let increment =
        fixture("fork-both/incr-samerepo/data/20261202/img0_v2_incr_from_latest_amd64.tar");
    assert_success(&upload(&target.url(), &increment, &[]));
    assert_served(&target, &fork_images(&[IMG0, IMG0_V2]));

    // The fork's increment of new repositories: its base layers sit under other repositories
    // of the target, which no meta names; they are found there and mounted (the fork itself
    // fails here: "Open blob … from OCI layout error").
    let increment = fixture("fork-both/incr/data/20261202/img_incr_202612020155_amd64.tar");
    assert_success(&upload(&target.url(), &increment, &[]));
    assert_served(&target, &fork_images(&[IMG3, IMG4]));
}

/// Every kind loads into Podman's Docker API: each image present under its name, with the
/// config (image ID) the source had.
#[cfg(unix)]
#[test]
fn every_kind_loads_into_a_docker_api() {
    let config_of = |manifest: &str| -> String {
        let manifest: serde_json::Value = serde_json::from_str(manifest).unwrap();
        manifest["config"]["digest"].as_str().unwrap().to_string()
    };
    let orig_tar = "orig-tar/data/20261202/img_full_202612020153_meta.yaml";
    // Configs of img0..img2 as the source had them.
    let expected: BTreeMap<String, String> = Meta::read(&fixture(orig_tar))
        .manifests
        .iter()
        .map(|(key, text)| (crate::bundle_support::image_of_key(key), config_of(text)))
        .collect();
    assert_eq!(expected.len(), 3);
    for bundle in [
        orig_tar,
        "orig-docker-singlefile/data/20261202/img_full_202612020153_meta.yaml",
        "derived-gzip/data/20261202/img_full_202612020153_meta.yaml",
        "derived-xz/data/20261202/img_full_202612020153_meta.yaml",
        "derived-lz4/data/20261202/img_full_202612020153_meta.yaml",
        "fork-oci/full/data/20261202/img_full_202612020155_amd64.tar",
        "fork-both/full/data/20261202/img_full_202612020155_amd64.tar",
        // Layers re-gzip'd, so layer and manifest digests change; the config, and so the image
        // ID, stays the source's.
        "orig-squashfs/data/20261202/img_full_202612020150_meta.yaml",
    ] {
        // A fresh service each time, so that each bundle is seen to load every image itself.
        let podman = testkit::TestPodman::start();
        let output = image_transmit(workdir().path())
            .env("DOCKER_HOST", podman.docker_host())
            .args(["load", "--to", "docker", fixture(bundle).to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&output);
        for (image, config) in &expected {
            let name = format!("127.0.0.1:5901/{image}");
            assert_eq!(
                podman.image_id(&name).as_deref(),
                Some(config.as_str()),
                "{bundle}: {name} among {:?}",
                podman.tags()
            );
        }
    }
}

/// An increment whose base meta is kept elsewhere: refused before anything moves, naming the
/// base and saying it is not beside it, in the user's language.
#[test]
fn an_increment_without_its_base_names_the_base_it_needs() {
    let target = TestRegistry::start();
    let increment = fixture("orig-tar-incr-samerepo/data/20261202/img_incr_202612020155_meta.yaml");
    let output = image_transmit(workdir().path())
        .env("LANG", "zh_CN.UTF-8")
        .args(["upload", "--to", &target.url(), increment.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let text = output_text(&output);
    assert!(text.contains("未上传任何内容"), "{text}");
    assert!(
        text.contains("它的基础包是 img_full_202612020153_meta.yaml，不在同一目录下"),
        "{text}"
    );
    assert_eq!(served_digest(&target, "team/img0", "v2"), None);
}

/// Copies the files of a fixture directory into `dir`, writable.
fn copy_fixture_dir(fixture_dir: &str, dir: &Path) {
    for entry in fs_err::read_dir(Path::new(FIXTURES).join(fixture_dir)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let copy = dir.join(path.file_name().unwrap());
            fs_err::copy(&path, &copy).unwrap();
            let mut permissions = fs_err::metadata(&copy).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            permissions.set_readonly(false);
            fs_err::set_permissions(&copy, permissions).unwrap();
        }
    }
}

fn verify_in(dir: &Path, meta: &str) -> std::process::Output {
    image_transmit(dir)
        .args(["verify", dir.join(meta).to_str().unwrap()])
        .output()
        .unwrap()
}

/// `verify` reports every fault with the images it breaks, and says what an increment needs.
#[test]
fn verify_reports_every_fault_and_what_an_increment_needs() {
    let dir = workdir();
    copy_fixture_dir("orig-tar/data/20261202", dir.path());
    let full = "img_full_202612020153_meta.yaml";
    let incr = "img_incr_202612020153_meta.yaml";

    // An increment with its base beside it checks out, and says it needs that base.
    let output = verify_in(dir.path(), incr);
    assert_success(&output);
    let text = output_text(&output);
    assert!(text.contains(", 0 fault(s)"), "{text}");
    assert!(
        text.contains("left to its base img_full_202612020153_meta.yaml, which is beside it"),
        "{text}"
    );

    // One data file of the full bundle gone, a blob in the other flipped: both reported, the
    // flipped blob tied to its images, and the images whose blobs were in the lost file named.
    fs_err::remove_file(dir.path().join("img_full_202612020153_1.tar")).unwrap();
    let output = verify_in(dir.path(), full);
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let text = output_text(&output);
    assert!(
        text.contains("Data file img_full_202612020153_1.tar is missing"),
        "{text}"
    );
    assert!(
        text.contains("which is not in the intact data files"),
        "{text}"
    );
    assert!(
        text.contains("7 blob(s)"),
        "the intact file was still checked: {text}"
    );
    let damaged = dir.path().join("img_full_202612020153_0.tar");
    let mut bytes = fs_err::read(&damaged).unwrap();
    // The first entry's data starts after its 512-byte header.
    bytes[600] ^= 0xff;
    fs_err::write(&damaged, bytes).unwrap();
    let output = verify_in(dir.path(), full);
    let text = output_text(&output);
    assert!(text.contains("is damaged: its content hashes to"), "{text}");
    assert!(
        text.contains("images that use it: http://127.0.0.1:5901/team/img"),
        "{text}"
    );

    // The increment alone, its base not beside it: still no fault of its own, but it says so.
    fs_err::remove_file(dir.path().join(full)).unwrap();
    let output = verify_in(dir.path(), incr);
    let text = output_text(&output);
    assert!(text.contains("which is NOT beside it"), "{text}");
}

/// Every increment loads into Podman's Docker API with its base given by `--base`: an engine
/// keeps no earlier layers to build on. Each image is there with the source's image ID.
#[cfg(unix)]
#[test]
fn every_increment_loads_into_a_docker_api_with_its_base() {
    let orig_full = "orig-tar/data/20261202/img_full_202612020153_meta.yaml";
    let fork_full = "fork-both/full/data/20261202/img_full_202612020155_amd64.tar";
    for (increment, base, images) in [
        (
            "orig-tar/data/20261202/img_incr_202612020153_meta.yaml",
            orig_full,
            &[IMG3, IMG4][..],
        ),
        (
            "orig-tar-incr-samerepo/data/20261202/img_incr_202612020155_meta.yaml",
            orig_full,
            &[IMG0_V2][..],
        ),
        (
            "fork-both/incr/data/20261202/img_incr_202612020155_amd64.tar",
            fork_full,
            &[IMG3, IMG4][..],
        ),
        (
            "fork-both/incr-samerepo/data/20261202/img0_v2_incr_from_latest_amd64.tar",
            fork_full,
            &[IMG0_V2][..],
        ),
    ] {
        let podman = testkit::TestPodman::start();
        let output = image_transmit(workdir().path())
            .env("DOCKER_HOST", podman.docker_host())
            .args([
                "load",
                "--to",
                "docker",
                fixture(increment).to_str().unwrap(),
            ])
            .args(["--base", fixture(base).to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&output);
        for (image, _) in images {
            let name = format!("127.0.0.1:5901/{image}");
            assert!(
                podman.image_id(&name).is_some(),
                "{increment}: {name} among {:?}",
                podman.tags()
            );
        }
    }
}
