//! Direct copy between real registries: digests preserved, every manifest kind, platforms,
//! renames, shared blobs moved once, re-runs that move nothing.

use serde_json::Value;
use testkit::proxy::FaultProxy;
use testkit::{
    CountingRelay, Layer, TestRegistry, push_docker_image, push_oci_image, push_oci_index,
    skopeo_copy_to_oci_dir, skopeo_inspect_raw,
};

use crate::common::{
    copy_between, image_transmit, served_digest, stderr_of, stdout_of, workdir, write,
};

#[test]
fn docker_oci_and_index_images_arrive_with_their_digests() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let base = Layer::random(1, 300_000);
    let docker = push_docker_image(
        &source,
        "team/docker",
        "1.0",
        &[base.clone(), Layer::random(2, 50_000)],
    );
    let oci = push_oci_image(
        &source,
        "team/oci",
        "2.0",
        &[base.clone(), Layer::random(3, 40_000)],
    );
    let index = push_oci_index(
        &source,
        "team/multi",
        "3.0",
        &[("linux", "amd64"), ("linux", "arm64")],
        &[base],
        20_000,
    );
    let dir = workdir();

    let output = copy_between(dir.path(), &source, &target)
        .args(["--json", "report.json"])
        .args(["team/docker:1.0", "team/oci:2.0", "team/multi:3.0"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout_of(&output),
        stderr_of(&output)
    );

    for image in [&docker, &oci, &index] {
        assert_eq!(
            served_digest(&target, &image.repository, &image.tag).as_deref(),
            Some(image.digest.as_str()),
            "{}",
            image.repository
        );
    }
    for child in &index.children {
        assert_eq!(
            served_digest(&target, "team/multi", &child.digest).as_deref(),
            Some(child.digest.as_str())
        );
    }
    // skopeo reads the copies back and verifies every blob digest on the way.
    let check = workdir();
    skopeo_copy_to_oci_dir(&target, "team/multi", "3.0", &check.path().join("multi")).unwrap();
    skopeo_copy_to_oci_dir(&target, "team/docker", "1.0", &check.path().join("docker")).unwrap();

    let report: Value =
        serde_json::from_slice(&fs_err::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["succeeded"], 3);
    assert_eq!(report["summary"]["failed"], 0);
    // The shared base layer went over the wire once; the other repositories mounted it.
    let unique_blobs = [&docker, &oci, &index]
        .iter()
        .flat_map(|image| image.blobs.iter())
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(report["blobs"]["transferred"], unique_blobs);
    assert!(
        report["blobs"]["mounted"].as_u64().unwrap() >= 2,
        "{report}"
    );
}

#[test]
fn a_second_run_only_asks_the_target_and_a_new_tag_moves_no_blob() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_oci_image(
        &source,
        "team/app",
        "1",
        &[Layer::random(4, 100_000), Layer::random(5, 100_000)],
    );
    // The proxy shows every request the target receives.
    let watched = FaultProxy::start(&target);
    let dir = workdir();
    let copy = |line: &str| {
        image_transmit(dir.path())
            .args(["copy", "--from", &source.url(), "--to", &watched.url()])
            .args(["--json", "r.json", line])
            .assert()
            .success();
        serde_json::from_slice::<Value>(&fs_err::read(dir.path().join("r.json")).unwrap()).unwrap()
    };
    copy("team/app:1");
    let before = watched.requests().len();

    let report = copy("team/app:1");
    assert_eq!(report["images"][0]["status"], "unchanged", "{report}");
    assert_eq!(report["bytes_transferred"], 0);
    let rerun: Vec<_> = watched.requests().split_off(before);
    assert!(
        // The ping (`/v2/`) and manifest HEADs; not one blob request.
        rerun.iter().all(|r| r.method == "HEAD" || r.path == "/v2/"),
        "{rerun:?}"
    );
    assert!(
        rerun.iter().any(|r| r.path.contains("/manifests/1")),
        "{rerun:?}"
    );

    let report = copy("team/app:1 -> team/app:2");
    assert_eq!(report["images"][0]["status"], "copied", "{report}");
    assert_eq!(report["blobs"]["transferred"], 0);
    assert_eq!(report["blobs"]["existing"], 3);
}

#[test]
fn platform_subset_rewrites_the_index_or_copies_one_manifest() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let index = push_oci_index(
        &source,
        "team/multi",
        "1",
        &[("linux", "amd64"), ("linux", "arm64")],
        &[Layer::random(6, 10_000)],
        10_000,
    );
    let arm = index
        .children
        .iter()
        .find(|c| c.architecture == "arm64")
        .unwrap();
    let dir = workdir();

    let output = copy_between(dir.path(), &source, &target)
        .args(["--platform", "linux/arm64"])
        .arg("team/multi:1->team/arm-index:1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("index digest changes"),
        "{}",
        stdout_of(&output)
    );
    let filtered = skopeo_inspect_raw(&target, "team/arm-index", "1").unwrap();
    let filtered: Value = serde_json::from_slice(&filtered).unwrap();
    let children = filtered["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["digest"], arm.digest.as_str());
    let amd = index
        .children
        .iter()
        .find(|c| c.architecture == "amd64")
        .unwrap();
    assert!(!testkit::registry_has_blob(
        &target,
        "team/arm-index",
        amd.blobs.last().unwrap()
    ));

    copy_between(dir.path(), &source, &target)
        .args(["--platform", "linux/arm64", "--platform-as-manifest"])
        .arg("team/multi:1->team/arm-only:1")
        .assert()
        .success();
    assert_eq!(
        served_digest(&target, "team/arm-only", "1").as_deref(),
        Some(arm.digest.as_str())
    );

    let output = copy_between(dir.path(), &source, &target)
        .args(["--platform", "windows/amd64", "team/multi:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_of(&output).contains("No platform"),
        "{}",
        stdout_of(&output)
    );
}

#[test]
fn digest_references_and_renames_work() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let image = push_docker_image(&source, "team/app", "1", &[Layer::random(7, 20_000)]);
    let dir = workdir();
    let list = format!(
        "# a comment\r\n\r\nteam/app@{digest}\r\nanother.registry.example/team/app:1 -> ns/renamed:2\r\n",
        digest = image.digest
    );
    write(dir.path(), "images.lst", &list);
    copy_between(dir.path(), &source, &target)
        .args(["--list", "images.lst"])
        .assert()
        .success();
    assert_eq!(
        served_digest(&target, "team/app", &image.digest).as_deref(),
        Some(image.digest.as_str())
    );
    assert_eq!(
        served_digest(&target, "ns/renamed", "2").as_deref(),
        Some(image.digest.as_str())
    );
}

#[test]
fn list_from_standard_input() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let image = push_docker_image(&source, "team/app", "1", &[Layer::random(8, 1_000)]);
    image_transmit(workdir().path())
        .args([
            "copy",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "--list",
            "-",
        ])
        .write_stdin("team/app:1\n")
        .assert()
        .success();
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
}

#[test]
fn authenticated_and_tls_registries_from_cfg_yaml() {
    let source = TestRegistry::start_with_auth("reader", "source-pass");
    let target = TestRegistry::start_tls();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(9, 30_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\n  user: reader\n  password: source-pass\ntarget:\n- name: gz\n  registry: {}\n  cacert: {}\n  repository: customer\n",
            source.url(),
            target.url(),
            target.ca_pem().unwrap().display()
        ),
    );
    image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .assert()
        .success();
    assert_eq!(
        served_digest(&target, "customer/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
}

/// A registry written without a scheme, as the original tool's samples write one
/// (`registry: "10.45.80.1:5000"`), that speaks plain HTTP: HTTPS is tried once in the whole run,
/// not retried, though the source and the target both live there.
#[test]
fn a_plain_http_registry_without_a_scheme_costs_one_tls_attempt() {
    let registry = TestRegistry::start();
    let relay = CountingRelay::start(&registry.host());
    let image = push_oci_image(&registry, "team/app", "1", &[Layer::random(171, 20_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: lan\n  registry: \"{host}\"\ntarget:\n- name: mirror\n  registry: \"{host}\"\n  repository: mirror\n",
            host = relay.host()
        ),
    );
    image_transmit(dir.path())
        .args(["copy", "--from", "lan", "--to", "mirror", "team/app:1"])
        .assert()
        .success();
    assert_eq!(
        served_digest(&registry, "mirror/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
    assert_eq!(relay.tls_connections(), 1);
}

/// A system with no trusted root certificates at all (an empty container or chroot, where the
/// static Linux build is meant to run): plain-HTTP registries and a `cacert:` registry still
/// work, and an HTTPS registry without one is refused as untrusted, with the hint.
#[test]
fn a_system_without_trusted_roots_still_copies() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_tls();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(19, 20_000)]);
    let dir = workdir();
    let no_roots = dir.path().join("no-roots");
    fs_err::create_dir_all(&no_roots).unwrap();
    let without_roots = |command: &mut assert_cmd::Command| {
        command
            .env("SSL_CERT_FILE", no_roots.join("none.pem"))
            .env("SSL_CERT_DIR", &no_roots);
    };
    let untrusted = {
        let mut command = copy_between(dir.path(), &source, &target);
        without_roots(&mut command);
        command.arg("team/app:1").output().unwrap()
    };
    assert_eq!(untrusted.status.code(), Some(1));
    let text = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        text.contains("is not trusted") && text.contains("cacert"),
        "{text}"
    );
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\ntarget:\n- name: gz\n  registry: {}\n  cacert: {}\n",
            source.url(),
            target.url(),
            target.ca_pem().unwrap().display()
        ),
    );
    let mut command = image_transmit(dir.path());
    without_roots(&mut command);
    command
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .assert()
        .success();
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
}

/// A self-signed registry given by address: trusted through skopeo's flags, a CA directory
/// (`*.crt`, as Docker's certs.d) or no verification at all; refused without them.
#[test]
fn skopeos_tls_flags_trust_registries_given_by_address() {
    let tls = TestRegistry::start_tls();
    let plain = TestRegistry::start();
    let image = push_docker_image(&plain, "team/app", "1", &[Layer::random(91, 5_000)]);
    let dir = workdir();
    let certs = dir.path().join("certs.d");
    fs_err::create_dir(&certs).unwrap();
    fs_err::copy(tls.ca_pem().unwrap(), certs.join("ca.crt")).unwrap();
    let certs = certs.to_str().unwrap().to_string();
    let copy = |from: &TestRegistry, to: &TestRegistry, line: &str, flags: &[&str]| {
        let output = copy_between(dir.path(), from, to)
            .args(flags)
            .arg(line)
            .output()
            .unwrap();
        (
            output.status.code(),
            format!("{}{}", stdout_of(&output), stderr_of(&output)),
        )
    };

    // Into the TLS registry: refused, then trusted by its CA, then without verification.
    let (code, text) = copy(&plain, &tls, "team/app:1", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("TLS certificate"), "{text}");
    let (code, text) = copy(&plain, &tls, "team/app:1", &["--dest-cert-dir", &certs]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = copy(
        &plain,
        &tls,
        "team/app:1 -> team/app:2",
        &["--dest-tls-verify=false"],
    );
    assert_eq!(code, Some(0), "{text}");
    for tag in ["1", "2"] {
        assert_eq!(
            served_digest(&tls, "team/app", tag),
            Some(image.digest.clone()),
            "{tag}"
        );
    }

    // Out of it, the same way.
    let back = TestRegistry::start();
    let (code, text) = copy(&tls, &back, "team/app:1", &[]);
    assert_eq!(code, Some(1), "{text}");
    let (code, text) = copy(&tls, &back, "team/app:1", &["--src-cert-dir", &certs]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = copy(&tls, &back, "team/app:2", &["--src-tls-verify=false"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(served_digest(&back, "team/app", "2"), Some(image.digest));

    // A CA directory without certificates is one clear sentence.
    let empty = dir.path().join("empty");
    fs_err::create_dir(&empty).unwrap();
    let (code, text) = copy(
        &tls,
        &back,
        "team/app:1",
        &["--src-cert-dir", empty.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no *.crt file"), "{text}");
}

/// On an 80-column terminal the progress fits: every line drawn is at most 80 columns, and an
/// image's bar never starts full: it appears once the image's first blob moves, its size known.
#[cfg(unix)]
#[test]
fn progress_bars_fit_80_columns_and_start_empty() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_docker_image(&source, "team/app", "1", &[Layer::random(93, 200_000)]);
    let binary = assert_cmd::cargo::cargo_bin("image-transmit");
    let command = format!(
        "stty cols 80 rows 30; LANG=C.UTF-8 {} copy --from {} --to {}/a-rather-long-namespace-for-seeing-the-width team/app:1",
        binary.display(),
        source.url(),
        target.url()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&output.stdout);
    assert!(drawn.contains("1 images: 1 succeeded"), "{drawn}");
    // Every cursor movement or line end starts a new drawn line.
    let escape = drawn_lines(&drawn);
    // The bars and the spinner's status line; the log lines and the final status above them
    // are text, and wrap as text does.
    let is_spinner = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    let progress: Vec<&String> = escape
        .iter()
        .filter(|line| line.starts_with("  [") || line.starts_with(is_spinner))
        .collect();
    assert!(!progress.is_empty(), "{drawn:?}");
    for line in progress {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    let first_bar = escape
        .iter()
        .find(|line| line.trim_start().starts_with('['))
        .unwrap_or_else(|| panic!("no bar drawn: {drawn:?}"));
    assert!(
        !first_bar.contains("[====================]") && first_bar.contains(" KiB/"),
        "{first_bar:?}"
    );
}

/// The text between terminal control sequences and line ends.
#[cfg(unix)]
fn drawn_lines(text: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-letter.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                lines.push(String::new());
            }
            '\r' | '\n' => lines.push(String::new()),
            c => lines.last_mut().unwrap().push(c),
        }
    }
    lines.retain(|line| !line.is_empty());
    lines
}
