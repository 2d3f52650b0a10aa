//! Across real networks (issue 14): the job's bandwidth cap. How close to the cap a job runs is
//! measured in `bench/`; here only that the cap holds at all (a lower bound on the time, which
//! a slow machine cannot break) and that wrong values are refused.

use std::time::{Duration, Instant};

use testkit::{Layer, TestRegistry, push_oci_image};

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
