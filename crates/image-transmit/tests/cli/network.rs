//! Across real networks (issue 14): downloads and uploads that continue after a broken or
//! stalled connection instead of starting again, through `testkit::proxy::FaultProxy` in front
//! of real registries, and the job's bandwidth cap. How close to the cap a job runs, and how
//! many bytes a resume costs, is measured in `bench/`; here only that the cap holds at all (a
//! lower bound on the time, which a slow machine cannot break) and that wrong values are
//! refused.

use std::time::{Duration, Instant};

use testkit::proxy::{FaultProxy, Rule, SeenRequest};
use testkit::{Layer, PushedImage, TestRegistry, push_oci_image};

use crate::bundle_support::{assert_success, line, output_text};
use crate::common::{image_transmit, served_digest, workdir, write};

#[test]
fn a_limited_copy_moves_no_faster_than_its_rate() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(140_001, 2 << 20)]);
    let dir = workdir();
    let started = Instant::now();
    let output = image_transmit(dir.path())
        .args(["copy", "--limit-rate", "1M", &source.url(), &target.url()])
        .arg(line(&image))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
    // 2 MiB at 1 MiB/s: two seconds, less the tenth of a second the bucket may hold.
    assert!(
        elapsed >= Duration::from_millis(1_850),
        "2 MiB at 1 MiB/s took {elapsed:?}"
    );
}

#[test]
fn a_wrong_rate_is_refused_in_one_sentence() {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .args(["copy", "--limit-rate", "fast", "a", "oci:out"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(output_text(&output).contains("fast is not a valid value for --limit-rate"));

    write(dir.path(), "cfg.yaml", "limitrate: slow\n");
    let output = image_transmit(dir.path())
        .args(["copy", "a", "oci:out", "x:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("limitrate: \"slow\" is not a rate"),
        "{}",
        output_text(&output)
    );
    assert!(!dir.path().join("out").exists());
}

/// A copy from `proxy` (in front of the source) to `target` of `image`, which must succeed and
/// arrive digest-exact; the GET requests for `blob` the proxy saw.
#[track_caller]
fn copy_through(
    proxy: &FaultProxy,
    target: &TestRegistry,
    image: &PushedImage,
    blob: &str,
    extra: &[&str],
) -> Vec<SeenRequest> {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .args(["copy", &proxy.url(), &target.url()])
        .args(extra)
        .arg(line(image))
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(target, &image.repository, &image.tag).as_deref(),
        Some(image.digest.as_str())
    );
    proxy
        .requests()
        .into_iter()
        .filter(|request| request.method == "GET" && request.path.ends_with(blob))
        .collect()
}

/// A proxy that cuts every download of the layer after 300 kB: each break continues with a
/// `Range` request from the last byte received, and the layer arrives whole (the target
/// registry checks its digest on commit, and so does the copy).
#[test]
fn a_download_cut_again_and_again_continues_where_it_broke() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_010, 1_000_000);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&source);
    proxy.add(Rule::cut_body("GET", layer.digest(), 300_000));

    let reads = copy_through(&proxy, &target, &image, layer.digest(), &[]);
    let size = layer.bytes().len() as u64;
    let expected: Vec<Option<String>> = (0..size.div_ceil(300_000))
        .map(|part| (part > 0).then(|| format!("bytes={}-", part * 300_000)))
        .collect();
    let ranges: Vec<Option<String>> = reads.iter().map(|read| read.range.clone()).collect();
    assert_eq!(ranges, expected, "{reads:#?}");
    assert!(
        reads[1..].iter().all(|read| read.status == Some(206)),
        "{reads:#?}"
    );
}

/// A registry that ignores `Range` answers the resumed download with the whole blob: the
/// bytes already received are dropped, not passed on twice, and the layer arrives whole.
#[test]
fn a_registry_that_ignores_range_gets_the_download_from_the_start() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_011, 600_000);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&source);
    proxy.add(Rule::cut_body("GET", layer.digest(), 250_000).times(1));
    proxy.add(Rule::ignore_range("GET", layer.digest()));

    let reads = copy_through(&proxy, &target, &image, layer.digest(), &[]);
    assert_eq!(reads.len(), 2, "{reads:#?}");
    assert_eq!(reads[1].range.as_deref(), Some("bytes=250000-"));
    assert_eq!(reads[1].status, Some(200), "{reads:#?}");
}

/// A download whose connection goes silent midway is resumed on a new connection after half
/// the stall timeout, before the job would give the blob up.
#[test]
fn a_stalled_download_is_resumed_on_a_new_connection() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_012, 500_000);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&source);
    proxy.add(Rule::hang_body("GET", layer.digest(), 200_000).times(1));

    let reads = copy_through(
        &proxy,
        &target,
        &image,
        layer.digest(),
        &["--stall-timeout", "4", "--retries", "0"],
    );
    assert_eq!(reads.len(), 2, "{reads:#?}");
    assert_eq!(reads[1].range.as_deref(), Some("bytes=200000-"));
    assert_eq!(reads[1].status, Some(206), "{reads:#?}");
}
