//! Every image kind pushes to every registry kind, and skopeo then reads back exactly the bytes,
//! digest and blobs that the returned `PushedImage` describes.

use serde_json::Value;
use testkit::{
    Layer, PushedImage, RegistryOptions, TestRegistry, push_docker_image, push_oci_image,
    push_oci_index, registry_has_blob, sha256_digest, skopeo_copy_to_oci_dir, skopeo_inspect_raw,
};

const PLATFORMS: &[(&str, &str)] = &[("linux", "amd64"), ("linux", "arm64")];

/// Checks `pushed` against the registry through skopeo and plain HEAD requests.
fn assert_served(reg: &TestRegistry, pushed: &PushedImage) {
    let by_tag = skopeo_inspect_raw(reg, &pushed.repository, &pushed.tag)
        .unwrap_or_else(|| panic!("{}:{} missing", pushed.repository, pushed.tag));
    assert_eq!(sha256_digest(&by_tag), pushed.digest);
    assert_eq!(by_tag, pushed.manifest);
    let media_type = serde_json::from_slice::<Value>(&by_tag).unwrap()["mediaType"].clone();
    assert_eq!(media_type, pushed.media_type.as_str());

    let by_digest = skopeo_inspect_raw(reg, &pushed.repository, &pushed.digest);
    assert_eq!(by_digest.as_deref(), Some(by_tag.as_slice()));

    assert!(!pushed.blobs.is_empty());
    for blob in &pushed.blobs {
        assert!(
            registry_has_blob(reg, &pushed.repository, blob),
            "{blob} missing"
        );
    }

    let copy = tempfile::tempdir().unwrap();
    skopeo_copy_to_oci_dir(reg, &pushed.repository, &pushed.tag, copy.path()).unwrap();
}

/// Pushes one image of each kind to `reg` and checks each.
fn check_all_image_kinds(reg: &TestRegistry) {
    let docker = push_docker_image(
        reg,
        "test/docker",
        "v1",
        &[Layer::random(1, 50_000), Layer::random(2, 20_000)],
    );
    assert_served(reg, &docker);

    let oci = push_oci_image(reg, "test/oci", "v1", &[Layer::random(3, 30_000)]);
    assert_served(reg, &oci);

    let index = push_oci_index(
        reg,
        "test/index",
        "v1",
        PLATFORMS,
        &[Layer::random(4, 40_000)],
        10_000,
    );
    assert_served(reg, &index);
}

#[test]
fn all_image_kinds_on_plain_registry() {
    check_all_image_kinds(&TestRegistry::start());
}

#[test]
fn all_image_kinds_on_auth_registry() {
    check_all_image_kinds(&TestRegistry::start_with_auth("alice", "s3cret"));
}

#[test]
fn all_image_kinds_on_tls_registry() {
    check_all_image_kinds(&TestRegistry::start_tls());
}

#[test]
fn all_image_kinds_on_tls_auth_registry() {
    check_all_image_kinds(&TestRegistry::start_with(RegistryOptions {
        credentials: Some(("bob".to_owned(), "pw".to_owned())),
        tls: true,
    }));
}

#[test]
fn index_children_are_served_with_shared_and_own_layers() {
    let reg = TestRegistry::start();
    let shared = Layer::random(10, 25_000);
    let index = push_oci_index(
        &reg,
        "multi",
        "latest",
        PLATFORMS,
        std::slice::from_ref(&shared),
        5_000,
    );

    let listed: Value = serde_json::from_slice(&index.manifest).unwrap();
    let listed: Vec<(String, String, String)> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let field = |value: &Value| value.as_str().unwrap().to_owned();
            (
                field(&entry["platform"]["os"]),
                field(&entry["platform"]["architecture"]),
                field(&entry["digest"]),
            )
        })
        .collect();
    let children: Vec<(String, String, String)> = index
        .children
        .iter()
        .map(|child| {
            (
                child.os.clone(),
                child.architecture.clone(),
                child.digest.clone(),
            )
        })
        .collect();
    assert_eq!(listed, children);
    assert_eq!(
        children
            .iter()
            .map(|(os, arch, _)| (os.as_str(), arch.as_str()))
            .collect::<Vec<_>>(),
        PLATFORMS
    );

    for child in &index.children {
        let served = skopeo_inspect_raw(&reg, "multi", &child.digest)
            .unwrap_or_else(|| panic!("{}/{} missing", child.os, child.architecture));
        assert_eq!(served, child.manifest);
        assert_eq!(sha256_digest(&served), child.digest);
        assert!(child.blobs.iter().any(|blob| blob == shared.digest()));
    }
    let own_layers: Vec<&String> = index
        .children
        .iter()
        .map(|child| child.blobs.last().unwrap())
        .collect();
    assert_ne!(own_layers[0], own_layers[1]);
    // Two configs, two own layers and the shared one, each listed once.
    assert_eq!(index.blobs.len(), 5);
}

#[test]
fn missing_manifests_and_blobs_read_as_absent() {
    let reg = TestRegistry::start();
    let pushed = push_docker_image(&reg, "present", "v1", &[Layer::random(20, 1_000)]);
    assert!(skopeo_inspect_raw(&reg, "present", "v2").is_none());
    assert!(skopeo_inspect_raw(&reg, "absent", "v1").is_none());
    assert!(!registry_has_blob(
        &reg,
        "present",
        Layer::random(21, 1_000).digest()
    ));
    assert!(registry_has_blob(&reg, "present", &pushed.blobs[1]));
}

#[test]
fn copy_of_a_missing_image_fails() {
    let reg = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    assert!(skopeo_copy_to_oci_dir(&reg, "absent", "v1", dir.path()).is_err());
}
