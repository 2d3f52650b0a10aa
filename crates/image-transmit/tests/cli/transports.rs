//! `copy SOURCE DESTINATION`: every pair of locations that makes sense, against real parts.
//! skopeo and umoci (which share no code with the product) read what it writes into OCI
//! layouts and archives and write the archives it reads; the registry says what arrived
//! (files into Podman's Docker API and containerd: `load.rs`). A pair that cannot work is
//! refused in one sentence with exit status 2, leaving nothing behind.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{
    Layer, PushedImage, TestRegistry, push_docker_image, push_oci_image, push_oci_index,
};

use crate::bundle_support::{announced_meta, assert_success, line, output_text};
use crate::common::{image_transmit, served_digest, workdir};

/// `image-transmit copy ARGS…` in `dir`.
fn copy(dir: &Path, args: &[&str]) -> Output {
    image_transmit(dir).arg("copy").args(args).output().unwrap()
}

/// skopeo with `args`; its output, or why it failed.
fn skopeo(args: &[&str]) -> Result<String, String> {
    let output = Command::new("skopeo").args(args).output().unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("skopeo {args:?}: {}", output_text(&output)))
    }
}

/// The three kinds of image a registry serves: Docker schema 2, OCI, and an OCI index.
fn three_images(source: &TestRegistry, seed: u64) -> [PushedImage; 3] {
    let base = Layer::random(seed, 30_000);
    [
        push_docker_image(
            source,
            "team/docker",
            "1",
            &[base.clone(), Layer::random(seed + 1, 9_000)],
        ),
        push_oci_image(source, "team/oci", "2", std::slice::from_ref(&base)),
        push_oci_index(
            source,
            "team/multi",
            "3",
            &[("linux", "amd64"), ("linux", "arm64")],
            &[base],
            4_000,
        ),
    ]
}

/// Every image arrived in `target` under its own name with its own digest.
#[track_caller]
fn assert_arrived(target: &TestRegistry, prefix: &str, images: &[PushedImage]) {
    for image in images {
        let repository = format!("{prefix}{}", image.repository);
        assert_eq!(
            served_digest(target, &repository, &image.tag).as_deref(),
            Some(image.digest.as_str()),
            "{repository}"
        );
    }
}

/// The config and layer digests of a manifest's JSON.
fn blobs_of(manifest: &Value) -> Vec<String> {
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|descriptor| descriptor["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registry_to_an_oci_layout_that_skopeo_and_umoci_read_and_back_with_the_same_digests() {
    let source = TestRegistry::start();
    let images = three_images(&source, 71_000);
    let dir = workdir();
    let lines: Vec<String> = images.iter().map(line).collect();
    let mut args = vec![source.url(), "oci:layout".to_string()];
    args.extend(lines.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copy(dir.path(), &args);
    assert_success(&output);
    assert!(
        output_text(&output).contains("layout"),
        "{}",
        output_text(&output)
    );

    // umoci lists every image by the name it was copied under; skopeo copies each out of the
    // layout, checking every blob against its digest.
    let layout = dir.path().join("layout");
    let listed = Command::new("umoci")
        .args(["ls", "--layout"])
        .arg(&layout)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", output_text(&listed));
    let names = String::from_utf8_lossy(&listed.stdout).into_owned();
    for line in &lines {
        let name = format!("{}/{line}", source.host());
        assert!(
            names.lines().any(|listed| listed == name),
            "{name} in {names}"
        );
        let out = dir
            .path()
            .join(format!("check-{}", line.replace(['/', ':'], "-")));
        skopeo(&[
            "copy",
            "--all",
            "--quiet",
            &format!("oci:{}:{name}", layout.display()),
            &format!("oci:{}", out.display()),
        ])
        .unwrap();
    }
    // The OCI images are stored as they are; the Docker one is listed through an OCI twin with
    // the same blobs (OCI tools skip Docker media types), as skopeo converts it.
    let docker = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:{}/{}", layout.display(), source.host(), lines[0]),
    ])
    .unwrap();
    let docker: Value = serde_json::from_str(&docker).unwrap();
    assert_eq!(
        docker["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{docker}"
    );
    assert_eq!(blobs_of(&docker), images[0].blobs);

    // Back out, with no image named: all of them, each with its digest (the Docker one too).
    let target = TestRegistry::start();
    let output = copy(dir.path(), &["oci:layout", &target.url()]);
    assert_success(&output);
    assert_arrived(&target, "", &images);

    // Again into the same layout: still one entry per name.
    let output = copy(dir.path(), &args);
    assert_success(&output);
    let index: Value =
        serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3, "{index}");
}

#[test]
fn registry_to_oci_and_docker_archives_that_skopeo_and_podman_read_and_back() {
    let source = TestRegistry::start();
    let images = three_images(&source, 72_000);
    let dir = workdir();
    let lines: Vec<String> = images.iter().map(line).collect();
    for archive in ["oci-archive:images.tar", "docker-archive:docker.tar"] {
        let mut args = vec![source.url(), archive.to_string()];
        args.extend(lines.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_success(&copy(dir.path(), &args));
    }
    // skopeo reads each image out of the OCI archive, checking every blob.
    for line in &lines {
        skopeo(&[
            "copy",
            "--all",
            "--quiet",
            &format!(
                "oci-archive:{}:{line}",
                dir.path().join("images.tar").display()
            ),
            &format!("oci:{}", dir.path().join("from-archive").display()),
        ])
        .unwrap();
    }
    // Podman loads the docker archive: every tag, the Docker image with its own config.
    let podman = Command::new("podman")
        .args(["--root"])
        .arg(dir.path().join("podman-root"))
        .args(["--runroot"])
        .arg(dir.path().join("podman-run"))
        .args(["load", "-i"])
        .arg(dir.path().join("docker.tar"))
        .output()
        .unwrap();
    let loaded = output_text(&podman);
    assert!(podman.status.success(), "{loaded}");
    for line in &lines {
        assert!(
            loaded.contains(&format!("{}/{line}", source.host())),
            "{line} in {loaded}"
        );
    }

    // Both archives back into a registry, all images, with their digests.
    for (archive, prefix) in [
        ("oci-archive:images.tar", "oci"),
        ("docker-archive:docker.tar", "docker"),
    ] {
        let target = TestRegistry::start();
        let output = copy(
            dir.path(),
            &[archive, &format!("{}/{prefix}", target.url())],
        );
        assert_success(&output);
        assert_arrived(&target, &format!("{prefix}/"), &images);
    }

    // An archive is never overwritten.
    let before = fs_err::read(dir.path().join("docker.tar")).unwrap();
    let output = copy(
        dir.path(),
        &[&source.url(), "docker-archive:docker.tar", &lines[0]],
    );
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(output_text(&output).contains("never overwritten"));
    assert_eq!(fs_err::read(dir.path().join("docker.tar")).unwrap(), before);
}

#[test]
fn archives_skopeo_and_podman_write_are_read_with_their_blobs() {
    let source = TestRegistry::start();
    let image = push_docker_image(
        &source,
        "team/app",
        "1",
        &[Layer::random(73_001, 20_000), Layer::random(73_002, 5_000)],
    );
    let oci = push_oci_image(&source, "team/oci", "1", &[Layer::random(73_003, 8_000)]);
    let dir = workdir();
    let from = |image: &PushedImage| {
        format!(
            "docker://{}/{}:{}",
            source.host(),
            image.repository,
            image.tag
        )
    };
    // skopeo's docker-archive: Docker's old layout, layers uncompressed, old paths as links.
    let docker_archive = dir.path().join("skopeo-docker.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &from(&image),
        &format!("docker-archive:{}:vendor/app:1", docker_archive.display()),
    ])
    .unwrap();
    // skopeo's oci-archive, named by a bare tag.
    let oci_archive = dir.path().join("skopeo-oci.tar");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &from(&oci),
        &format!("oci-archive:{}:v1", oci_archive.display()),
    ])
    .unwrap();

    let target = TestRegistry::start();
    let output = copy(
        dir.path(),
        &[
            &format!("docker-archive:{}", docker_archive.display()),
            &target.url(),
        ],
    );
    assert_success(&output);
    // The archive holds no registry manifest: one is made, as skopeo makes it, with the
    // image's own config and layers (uncompressed, as the archive holds them).
    let arrived = testkit::skopeo_inspect_raw(&target, "vendor/app", "1").expect("vendor/app:1");
    let arrived: Value = serde_json::from_slice(&arrived).unwrap();
    assert_eq!(arrived["config"]["digest"], image.blobs[0].as_str());
    let expected = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker-archive:{}", docker_archive.display()),
    ])
    .unwrap();
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(blobs_of(&arrived), blobs_of(&expected));

    // The bare tag names the image after the archive's file.
    let output = copy(
        dir.path(),
        &[
            &format!("oci-archive:{}", oci_archive.display()),
            &target.url(),
        ],
    );
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "skopeo-oci", "v1").as_deref(),
        Some(oci.digest.as_str())
    );
}

#[test]
fn bundles_go_to_layouts_and_archives_and_an_increment_alone_is_refused() {
    let source = TestRegistry::start();
    let images = three_images(&source, 74_000);
    let dir = workdir();
    let lines: Vec<String> = images.iter().map(line).collect();
    let mut args = vec![source.url(), "bundle:offline".to_string()];
    args.extend(lines.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copy(dir.path(), &args);
    assert_success(&output);
    let meta = announced_meta(dir.path(), &output);
    assert!(
        meta.starts_with(dir.path().join("offline")),
        "{}",
        meta.display()
    );

    // The bundle into a layout, then the layout into a registry: the digests survive both.
    let bundle = format!("bundle:{}", meta.display());
    assert_success(&copy(dir.path(), &[&bundle, "oci:from-bundle"]));
    let target = TestRegistry::start();
    assert_success(&copy(dir.path(), &["oci:from-bundle", &target.url()]));
    assert_arrived(&target, "", &images);
    // And straight into a registry, as `upload` does.
    let target = TestRegistry::start();
    assert_success(&copy(dir.path(), &[&bundle, &target.url()]));
    assert_arrived(&target, "", &images);

    // The original's increment carries only new blobs: into a file it cannot go alone.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let increment = fixtures.join("original-bundle/img_incr_202611230709_meta.yaml");
    let output = copy(
        dir.path(),
        &[&format!("bundle:{}", increment.display()), "oci:increment"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("neither it nor the base bundle"),
        "{}",
        output_text(&output)
    );
    assert!(!dir.path().join("increment").exists());
    // With the bundle it builds on, it goes: every image of the increment, skopeo reading each.
    let base = fixtures.join("original-bundle/img_full_202611230708_meta.yaml");
    let output = copy(
        dir.path(),
        &[
            &format!("bundle:{}", increment.display()),
            "oci:increment",
            "--base",
            &base.display().to_string(),
        ],
    );
    assert_success(&output);
    let index: Value =
        serde_json::from_slice(&fs_err::read(dir.path().join("increment/index.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(!names.is_empty());
    for name in names {
        skopeo(&[
            "copy",
            "--quiet",
            &format!("oci:{}:{name}", dir.path().join("increment").display()),
            &format!("oci:{}", dir.path().join("increment-check").display()),
        ])
        .unwrap();
    }
}

#[test]
fn pairs_that_cannot_work_are_refused_in_one_sentence() {
    let dir = workdir();
    let refusals: [(&[&str], &str); 5] = [
        (&["docker-daemon:", "oci:out"], "only takes them"),
        (
            &["oci-layout:x", "oci:out"],
            "oci-layout: is not a kind of location",
        ),
        (&["oci:", "oci:out"], "needs a path"),
        (&["oci:out"], "needs a source and a destination"),
        (&["bundle:.", "oci:out"], "is a folder"),
    ];
    for (args, sentence) in refusals {
        let output = copy(dir.path(), args);
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(sentence), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{args:?}: {text}");
        assert!(!dir.path().join("out").exists(), "{args:?}");
    }
    // In Chinese too.
    let output = image_transmit(dir.path())
        .args(["--lang", "zh_CN", "copy", "containerd:", "oci:out"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output_text(&output).contains("容器引擎"),
        "{}",
        output_text(&output)
    );

    // A source that cannot be reached: one sentence, exit 1, and no file or folder made.
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    for destination in [
        "bundle:out",
        "oci:out",
        "oci-archive:out",
        "docker-archive:out",
    ] {
        let output = copy(dir.path(), &[&closed, destination, "team/app:1"]);
        assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
        assert!(!dir.path().join("out").exists(), "{destination}");
    }

    // A folder that holds other things is not made into a layout.
    fs_err::create_dir(dir.path().join("notes")).unwrap();
    fs_err::write(dir.path().join("notes/todo.txt"), "keep me").unwrap();
    let source = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(76_001, 2_000)]);
    let output = copy(dir.path(), &[&source.url(), "oci:notes", &line(&image)]);
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(output_text(&output).contains("not an OCI image layout"));
    let left: Vec<_> = fs_err::read_dir(dir.path().join("notes"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["todo.txt"]);
}

/// Every file transport into every other and into a registry: the source made by `copy` from a
/// registry, each destination read back into a fresh registry (or checked there), where every
/// image must have its own digest; skopeo reads each OCI layout and archive written.
#[test]
fn every_file_transport_into_every_other_keeps_each_images_digest() {
    let source = TestRegistry::start();
    let images = three_images(&source, 77_000);
    let dir = workdir();
    let lines: Vec<String> = images.iter().map(line).collect();
    let kinds = ["bundle", "oci", "oci-archive", "docker-archive"];
    // A file location of `kind` named `name` in the scratch folder, for writing; for reading,
    // a bundle is its meta file.
    let place = |kind: &str, name: &str| match kind {
        "bundle" | "oci" => format!("{kind}:{name}"),
        _ => format!("{kind}:{name}.tar"),
    };
    let mut sources = Vec::new();
    for kind in kinds {
        let written = place(kind, &format!("from-registry-{kind}"));
        let mut args = vec![source.url(), written.clone()];
        args.extend(lines.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = copy(dir.path(), &args);
        assert_success(&output);
        let readable = match kind {
            "bundle" => format!("bundle:{}", announced_meta(dir.path(), &output).display()),
            _ => written,
        };
        sources.push((kind, readable));
    }
    for (from_kind, from) in &sources {
        // Straight into a registry.
        let target = TestRegistry::start();
        assert_success(&copy(dir.path(), &[from, &target.url()]));
        assert_arrived(&target, "", &images);
        for to_kind in kinds {
            let written = place(to_kind, &format!("{from_kind}-to-{to_kind}"));
            let output = copy(dir.path(), &[from, &written]);
            assert_success(&output);
            let readable = match to_kind {
                "bundle" => format!("bundle:{}", announced_meta(dir.path(), &output).display()),
                _ => written.clone(),
            };
            if to_kind != "bundle" {
                // skopeo reads the first image (by the name the file gives it), checking blobs.
                let path = written.split_once(':').unwrap().1;
                let reference = match to_kind {
                    "docker-archive" => format!(
                        "docker-archive:{}:{}/{}",
                        dir.path().join(path).display(),
                        source.host(),
                        lines[0]
                    ),
                    "oci" => format!(
                        "oci:{}:{}/{}",
                        dir.path().join(path).display(),
                        source.host(),
                        lines[0]
                    ),
                    _ => format!(
                        "oci-archive:{}:{}",
                        dir.path().join(path).display(),
                        lines[0]
                    ),
                };
                skopeo(&["inspect", "--raw", &reference])
                    .unwrap_or_else(|error| panic!("{from_kind} -> {to_kind}: {error}"));
            }
            let target = TestRegistry::start();
            let output = copy(dir.path(), &[&readable, &target.url()]);
            assert_success(&output);
            for image in &images {
                assert_eq!(
                    served_digest(&target, &image.repository, &image.tag).as_deref(),
                    Some(image.digest.as_str()),
                    "{from_kind} -> {to_kind} -> registry: {}",
                    image.repository
                );
            }
        }
    }
}

/// `--quiet`: a job that goes well writes nothing; one that fails still says why, on standard
/// error, with its exit status.
#[test]
fn quiet_writes_only_errors() {
    let source = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(78_001, 3_000)]);
    let dir = workdir();
    let output = copy(
        dir.path(),
        &["--quiet", &source.url(), "oci:layout", &line(&image)],
    );
    assert_success(&output);
    assert_eq!(output_text(&output).trim(), "");
    assert!(dir.path().join("layout/index.json").is_file());

    let output = copy(
        dir.path(),
        &["-q", &source.url(), "oci:layout", "team/missing:1"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(output.stdout.is_empty(), "{}", output_text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("team/missing:1"),
        "{}",
        output_text(&output)
    );
}

/// `--dry-run`: the same planning and checks as the job, each image looked up on both sides,
/// nothing moved or written.
#[test]
fn a_dry_run_says_what_would_be_copied_and_moves_nothing() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let images = three_images(&source, 80_000);
    let dir = workdir();
    let lines: Vec<String> = images.iter().map(line).collect();
    let mut args = vec![
        "--dry-run".to_string(),
        source.url(),
        "oci:planned".to_string(),
    ];
    args.extend(lines.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copy(dir.path(), &args);
    assert_success(&output);
    let text = output_text(&output);
    assert_eq!(text.matches(": to copy").count(), 3, "{text}");
    assert!(text.contains("nothing was copied"), "{text}");
    assert!(!dir.path().join("planned").exists());

    // Into a registry that has one of them already, with one image that is nowhere.
    assert_success(&copy(
        dir.path(),
        &[&source.url(), &target.url(), &lines[0]],
    ));
    let output = copy(
        dir.path(),
        &[
            "--dry-run",
            &source.url(),
            &target.url(),
            &lines[0],
            &lines[1],
            "team/nowhere:1",
        ],
    );
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{}: already there", lines[0])),
        "{text}"
    );
    assert!(text.contains(&format!("{}: to copy", lines[1])), "{text}");
    assert!(text.contains("team/nowhere:1"), "{text}");
    assert!(
        text.contains("1 image(s) to copy, 1 already there, 1 with problems"),
        "{text}"
    );
    assert_eq!(
        served_digest(&target, &images[1].repository, &images[1].tag),
        None
    );
}
