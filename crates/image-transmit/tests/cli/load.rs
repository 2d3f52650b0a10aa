//! Loading into local container engines: a real Docker-API daemon (Podman's compatible
//! service) and a real containerd, from registries and from bundles. Each loaded image is
//! looked up by the name it should have, and its image ID must be its config's digest.

use std::path::Path;
use std::process::Output;

use testkit::{
    Layer, PushedImage, TestContainerd, TestPodman, TestRegistry, push_docker_image,
    push_oci_image, push_oci_index,
};

use crate::bundle_support::{announced_meta, assert_success, line, output_text, save};
use crate::common::{image_transmit, workdir, write};

/// `image-transmit ARGS…` in `dir` with `DOCKER_HOST` at `podman`.
fn run_with_docker(dir: &Path, podman: &TestPodman, args: &[&str]) -> Output {
    image_transmit(dir)
        .env("DOCKER_HOST", podman.docker_host())
        .args(args)
        .output()
        .unwrap()
}

fn config_of(image: &PushedImage) -> &str {
    &image.blobs[0]
}

#[test]
fn copy_to_docker_loads_renamed_images_and_the_daemons_platform_of_an_index() {
    let source = TestRegistry::start();
    let docker = push_docker_image(&source, "team/docker", "1", &[Layer::random(61_001, 9_000)]);
    let oci = push_oci_image(
        &source,
        "team/oci",
        "1",
        &[Layer::random(61_002, 7_000), Layer::random(61_003, 3_000)],
    );
    let multi = push_oci_index(
        &source,
        "team/multi",
        "1",
        &[("linux", "arm64"), ("linux", "amd64")],
        &[Layer::random(61_004, 4_000)],
        2_000,
    );
    let podman = TestPodman::start();
    let dir = workdir();
    let renamed = format!("{} -> other/renamed:2", line(&oci));
    let output = run_with_docker(
        dir.path(),
        &podman,
        &[
            "copy",
            "--from",
            &source.url(),
            "--to",
            "docker",
            &line(&docker),
            &renamed,
            &line(&multi),
        ],
    );
    assert_success(&output);
    let host = source.host();
    assert_eq!(
        podman.image_id(&format!("{host}/team/docker:1")).as_deref(),
        Some(config_of(&docker))
    );
    assert_eq!(
        podman
            .image_id(&format!("{host}/other/renamed:2"))
            .as_deref(),
        Some(config_of(&oci))
    );
    assert_eq!(podman.image_id(&format!("{host}/team/oci:1")), None);
    // What is printed is the name the image was loaded under, ready to `docker run`.
    let printed = output_text(&output);
    for loaded in [
        format!("{host}/team/docker:1"),
        format!("{host}/other/renamed:2"),
    ] {
        assert!(
            printed.contains(&format!("-> {loaded}\n")),
            "{loaded}: {printed}"
        );
    }
    assert!(!printed.contains("-> docker/"), "{printed}");
    // Said of the engine, true whether or not any image had several platforms.
    assert!(
        printed.contains("Loading into docker, which runs linux/"),
        "{printed}"
    );
    let amd64 = multi
        .children
        .iter()
        .find(|child| child.architecture == "amd64")
        .unwrap();
    assert_eq!(
        podman.image_id(&format!("{host}/team/multi:1")).as_deref(),
        Some(amd64.blobs[0].as_str())
    );
    let tags = podman.tags();
    assert!(
        tags.iter().any(|tag| tag.ends_with("/other/renamed:2")),
        "{tags:?}"
    );

    // Loading again finds every image there already and sends nothing.
    let again = run_with_docker(
        dir.path(),
        &podman,
        &[
            "copy",
            "--from",
            &source.url(),
            "--to",
            "docker",
            &line(&docker),
        ],
    );
    assert_success(&again);
}

#[test]
fn legacy_dst_docker_loads_a_bundle_with_renames_and_the_repository_rewrite() {
    let source = TestRegistry::start();
    let first = push_oci_image(&source, "team/app", "1", &[Layer::random(62_001, 6_000)]);
    let second = push_docker_image(&source, "team/web", "2", &[Layer::random(62_002, 5_000)]);
    let dir = workdir();
    let (_, meta) = save(dir.path(), &source.url(), &[&line(&first), &line(&second)]);

    let podman = TestPodman::start();
    // A target named like the engine gives loaded names their host and namespace; a bare new
    // name goes under that namespace too.
    write(
        dir.path(),
        "cfg.yaml",
        "target:\n- name: docker\n  registry: customer.local:5000\n  repository: shipped\n",
    );
    let list = write(
        dir.path(),
        "img.lst",
        &format!("{}\n{} -> renamed:3\n", line(&first), line(&second)),
    );
    let output = run_with_docker(
        dir.path(),
        &podman,
        &[
            "-dst=docker",
            &format!("-img={}", meta.display()),
            &format!("-lst={}", list.display()),
        ],
    );
    assert_success(&output);
    assert_eq!(
        podman
            .image_id("customer.local:5000/shipped/app:1")
            .as_deref(),
        Some(config_of(&first))
    );
    assert_eq!(
        podman
            .image_id("customer.local:5000/shipped/renamed:3")
            .as_deref(),
        Some(config_of(&second))
    );
}

#[test]
fn an_increment_loads_only_with_its_base_and_a_broken_layer_fails_its_image() {
    let source = TestRegistry::start();
    let base_layer = Layer::random(63_001, 8_000);
    let app = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&base_layer));
    let next = push_oci_image(
        &source,
        "team/app",
        "2",
        &[base_layer, Layer::random(63_002, 3_000)],
    );
    let broken = push_docker_image(
        &source,
        "team/broken",
        "1",
        &[Layer::not_a_tar(63_003, 2_000)],
    );
    let dir = workdir();
    let (_, full) = save(dir.path(), &source.url(), &[&line(&app)]);
    let (_, increment) = save(
        dir.path(),
        &source.url(),
        &[
            "--incremental-from",
            full.to_str().unwrap(),
            &line(&next),
            &line(&broken),
        ],
    );
    let podman = TestPodman::start();

    let alone = run_with_docker(
        dir.path(),
        &podman,
        &["load", "--to", "docker", increment.to_str().unwrap()],
    );
    let text = output_text(&alone);
    assert_eq!(alone.status.code(), Some(1), "{text}");
    assert!(text.contains("Nothing was loaded"), "{text}");
    assert!(podman.tags().is_empty(), "{:?}", podman.tags());

    let with_base = run_with_docker(
        dir.path(),
        &podman,
        &[
            "load",
            "--to",
            "docker",
            increment.to_str().unwrap(),
            "--base",
            full.to_str().unwrap(),
        ],
    );
    let text = output_text(&with_base);
    // The layer that is not a tar is refused by the daemon: that image fails, the other lands.
    assert_eq!(with_base.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("team/broken"), "{text}");
    let host = source.host();
    assert_eq!(
        podman.image_id(&format!("{host}/team/app:2")).as_deref(),
        Some(config_of(&next))
    );
    assert_eq!(podman.image_id(&format!("{host}/team/broken:1")), None);
}

#[test]
fn an_engine_that_is_not_there_is_one_clear_line() {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.path().join("none.sock").display()),
        )
        .args([
            "copy",
            "--from",
            "http://127.0.0.1:1",
            "--to",
            "docker",
            "team/app:1",
        ])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("Cannot reach the container engine"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");

    let unknown = image_transmit(dir.path())
        .args(["load", "--to", "podman", "x_meta.yaml"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{}", output_text(&unknown));
}

#[test]
fn containerd_imports_into_k8s_io_from_a_registry_and_a_bundle() {
    let source = TestRegistry::start();
    let app = push_oci_image(&source, "team/app", "1", &[Layer::random(64_001, 5_000)]);
    let web = push_docker_image(&source, "team/web", "1", &[Layer::random(64_002, 4_000)]);
    let containerd = TestContainerd::start();
    let dir = workdir();
    let output = image_transmit(dir.path())
        .env("CONTAINERD_ADDRESS", containerd.address())
        .args(["copy", "--from", &source.url(), "--to", "containerd"])
        .arg(line(&app))
        .output()
        .unwrap();
    assert_success(&output);

    let (_, meta) = save(dir.path(), &source.url(), &[&line(&web)]);
    let output = image_transmit(dir.path())
        .args(["-dst=ctr", &format!("-img={}", meta.display())])
        .env("CONTAINERD_ADDRESS", containerd.address())
        .output()
        .unwrap();
    assert_success(&output);

    let images = containerd.images("k8s.io");
    let host = source.host();
    for image in [&app, &web] {
        let name = format!("{host}/{}", line(image));
        let (_, manifest_digest) = images
            .iter()
            .find(|(listed, _)| listed.ends_with(&name))
            .unwrap_or_else(|| panic!("{name} not in {images:?}"));
        // containerd writes its own manifest for an imported archive; its config and layers
        // are the source's.
        let manifest = containerd
            .ctr("k8s.io", &["content", "get", manifest_digest])
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], config_of(image), "{manifest}");
        let layers: Vec<&str> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["digest"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = image.blobs[1..].iter().map(String::as_str).collect();
        assert_eq!(layers, expected);
    }
    assert!(containerd.images("default").is_empty());
}

/// `image-transmit copy ARGS…` in `dir`.
fn copy_in(dir: &Path, args: &[&str]) -> Output {
    image_transmit(dir).arg("copy").args(args).output().unwrap()
}

/// `copy FILE docker-daemon:ADDRESS` and `copy FILE containerd:NAMESPACE`: an OCI layout and a
/// docker archive, each written by `copy`, into the engines.
#[test]
fn files_load_into_docker_and_containerd() {
    let source = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(75_001, 6_000)]);
    let dir = workdir();
    // Each kind of file holds the image under a name of its own (a bundle keeps the source's).
    let mut files = Vec::new();
    for (kind, written) in [
        ("oci", "oci:layout"),
        ("oci-archive", "oci-archive:app-oci.tar"),
        ("docker-archive", "docker-archive:app.tar"),
        ("bundle", "bundle:offline"),
    ] {
        let renamed = format!("{} -> kinds/{kind}:1", line(&image));
        let output = copy_in(dir.path(), &[&source.url(), written, &renamed]);
        assert_success(&output);
        let (readable, name) = match kind {
            "bundle" => (
                format!("bundle:{}", announced_meta(dir.path(), &output).display()),
                format!("{}/{}", source.host(), line(&image)),
            ),
            _ => (
                written.to_string(),
                format!("{}/kinds/{kind}:1", source.host()),
            ),
        };
        files.push((readable, name));
    }

    let podman = TestPodman::start();
    for (file, name) in &files {
        let output = copy_in(
            dir.path(),
            &[file, &format!("docker-daemon:{}", podman.docker_host())],
        );
        assert_success(&output);
        assert_eq!(
            podman.image_id(name).as_deref(),
            Some(image.blobs[0].as_str()),
            "{file}: {name} in {:?}",
            podman.tags()
        );
    }

    let containerd = TestContainerd::start();
    for (file, name) in files.iter().filter(|(file, _)| file.contains("archive")) {
        let output = image_transmit(dir.path())
            .env("CONTAINERD_ADDRESS", containerd.address())
            .args(["copy", file, "containerd:k8s.io"])
            .output()
            .unwrap();
        assert_success(&output);
        let images = containerd.images("k8s.io");
        assert!(
            images
                .iter()
                .any(|(listed, _)| listed.ends_with(name.as_str())),
            "{file}: {name} in {images:?}"
        );
    }
}
