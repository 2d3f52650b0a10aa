//! The blob cache (cfg.yaml `cache:`) with real registries: a save repeated with the source
//! stopped, a damaged cached blob replaced, eviction by size and by age, and two processes
//! sharing one cache.

use fs_err as fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::{Layer, TestRegistry, push_docker_image, push_oci_image, push_oci_index};

use crate::bundle_support::{
    Meta, announced_meta, assert_success, line, output_text, save, upload, verify,
};
use crate::common::{image_transmit, served_digest, stdout_of, workdir, write};

fn cache_config(dir: &Path, cache: &Path, extra: &str) {
    write(
        dir,
        "cfg.yaml",
        &format!("cache:\n  pathname: {}\n{extra}", cache.display()),
    );
}

/// Every file in the cache's `sha256/`, with whether its content matches its name.
fn cached_files(cache: &Path) -> Vec<(PathBuf, bool)> {
    fs::read_dir(cache.join("sha256"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let sound =
                testkit::sha256_digest(&fs::read(&path).unwrap()) == format!("sha256:{name}");
            (path, sound)
        })
        .collect()
}

fn cached_bytes(cache: &Path) -> u64 {
    cached_files(cache)
        .iter()
        .map(|(path, _)| fs::metadata(path).unwrap().len())
        .sum()
}

#[test]
fn a_second_save_runs_from_the_cache_with_the_source_stopped() {
    let mut source = TestRegistry::start();
    let app = push_oci_image(
        &source,
        "team/app",
        "1",
        &[Layer::random(71_001, 30_000), Layer::random(71_002, 5_000)],
    );
    let web = push_docker_image(&source, "team/web", "1", &[Layer::random(71_003, 9_000)]);
    let multi = push_oci_index(
        &source,
        "team/multi",
        "1",
        &[("linux", "amd64"), ("linux", "arm64")],
        &[Layer::random(71_004, 4_000)],
        2_000,
    );
    let dir = workdir();
    let cache = dir.path().join("cache");
    cache_config(dir.path(), &cache, "");
    let images = [line(&app), line(&web), line(&multi)];
    let args: Vec<&str> = images.iter().map(String::as_str).collect();
    let url = source.url();

    let (first, first_meta) = save(dir.path(), &url, &args);
    assert_success(&first);
    assert!(
        stdout_of(&first).contains("0 blob(s) read from the cache"),
        "{}",
        output_text(&first)
    );
    assert!(cached_files(&cache).iter().all(|(_, sound)| *sound));

    source.stop();
    let report = dir.path().join("report.json");
    let mut with_report = args.clone();
    with_report.extend(["--json", report.to_str().unwrap()]);
    let (second, second_meta) = save(dir.path(), &url, &with_report);
    let text = output_text(&second);
    assert_success(&second);
    let blobs = app.blobs.len() + web.blobs.len() + multi.blobs.len();
    assert!(
        text.contains(&format!("{blobs} blob(s) read from the cache")),
        "{text}"
    );
    assert!(text.contains("manifest(s) read from the cache"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["cache"]["hits"], blobs, "{report}");
    assert_eq!(report["cache"]["stored"], 0, "{report}");
    assert_ne!(first_meta, second_meta);
    assert_success(&verify(&second_meta));
    assert_eq!(
        Meta::read(&first_meta).manifests,
        Meta::read(&second_meta).manifests
    );

    // What the cache gave is what the source had: uploaded, every digest is the source's.
    let target = TestRegistry::start();
    assert_success(&upload(&target.url(), &second_meta, &[]));
    for image in [&app, &web, &multi] {
        assert_eq!(
            served_digest(&target, &image.repository, &image.tag).as_deref(),
            Some(image.digest.as_str())
        );
    }
}

#[test]
fn a_damaged_cached_blob_is_dropped_and_fetched_again() {
    let source = TestRegistry::start();
    let layer = Layer::random(72_001, 40_000);
    let app = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let dir = workdir();
    let cache = dir.path().join("cache");
    cache_config(dir.path(), &cache, "");
    let first_target = TestRegistry::start();
    let copy = |target: &TestRegistry| {
        image_transmit(dir.path())
            .args([
                "copy",
                "--from",
                &source.url(),
                "--to",
                &target.url(),
                &line(&app),
            ])
            .output()
            .unwrap()
    };
    assert_success(&copy(&first_target));

    let cached = cache
        .join("sha256")
        .join(layer.digest().trim_start_matches("sha256:"));
    let mut bytes = fs::read(&cached).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&cached, &bytes).unwrap();

    let second_target = TestRegistry::start();
    let output = copy(&second_target);
    assert_success(&output);
    assert_eq!(
        served_digest(&second_target, "team/app", "1").as_deref(),
        Some(app.digest.as_str())
    );
    assert!(cached.is_file(), "the blob is cached again");
    assert!(cached_files(&cache).iter().all(|(_, sound)| *sound));
}

#[test]
fn eviction_keeps_the_cache_within_its_size_and_age() {
    let source = TestRegistry::start();
    let images: Vec<_> = (0..3)
        .map(|n| {
            push_oci_image(
                &source,
                &format!("team/app{n}"),
                "1",
                &[Layer::random(73_000 + n, 50_000)],
            )
        })
        .collect();
    let lines: Vec<String> = images.iter().map(line).collect();
    let args: Vec<&str> = lines.iter().map(String::as_str).collect();
    let dir = workdir();
    let cache = dir.path().join("cache");

    // 100 KiB: room for two of the three 50 KB layers, not for all of them.
    let limit = 100 * 1024;
    cache_config(
        dir.path(),
        &cache,
        &format!("  keepsize: {}\n", limit as f64 / (1u64 << 30) as f64),
    );
    let (output, _) = save(dir.path(), &source.url(), &args);
    let text = output_text(&output);
    assert_success(&output);
    assert!(
        text.contains("to stay within keepdays / keepsize"),
        "{text}"
    );
    let kept = cached_bytes(&cache);
    assert!(kept <= limit, "{kept} bytes kept over a {limit} byte limit");
    assert!(kept > 0, "eviction keeps what fits");

    // Age: everything unused for ten days goes with keepdays 7, whatever its size.
    cache_config(dir.path(), &cache, "  keepdays: 7\n  keepsize: 10\n");
    let listing = image_transmit(dir.path())
        .args(["cache", "ls"])
        .output()
        .unwrap();
    assert_success(&listing);
    let listed = stdout_of(&listing);
    assert!(
        listed.contains(&format!("{} blob(s)", cached_files(&cache).len())),
        "{listed}"
    );
    for (path, _) in cached_files(&cache) {
        let status = Command::new("touch")
            .args(["-m", "-d", "10 days ago"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let pruned = image_transmit(dir.path())
        .args(["cache", "prune"])
        .output()
        .unwrap();
    assert_success(&pruned);
    assert!(cached_files(&cache).is_empty(), "{}", output_text(&pruned));
}

#[test]
fn two_saves_at_once_share_one_cache() {
    let source = TestRegistry::start();
    let shared = Layer::random(74_001, 200_000);
    let first = push_oci_image(
        &source,
        "team/one",
        "1",
        &[shared.clone(), Layer::random(74_002, 20_000)],
    );
    let second = push_oci_image(
        &source,
        "team/two",
        "1",
        &[shared, Layer::random(74_003, 20_000)],
    );
    let cache_home = workdir();
    let cache = cache_home.path().join("cache");
    let dirs = [workdir(), workdir()];
    let children: Vec<_> = dirs
        .iter()
        .map(|dir| {
            cache_config(dir.path(), &cache, "");
            Command::new(assert_cmd::cargo::cargo_bin("image-transmit"))
                .current_dir(dir.path())
                .env("LANG", "en_US.UTF-8")
                .args([
                    "save",
                    "--from",
                    &source.url(),
                    &line(&first),
                    &line(&second),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (dir, child) in dirs.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        assert_success(&output);
        assert_success(&verify(&announced_meta(dir.path(), &output)));
    }
    let files = cached_files(&cache);
    assert_eq!(
        files.len(),
        first.blobs.len() + second.blobs.len() - 1 + 2,
        "{files:?}"
    );
    assert!(files.iter().all(|(_, sound)| *sound));
}
