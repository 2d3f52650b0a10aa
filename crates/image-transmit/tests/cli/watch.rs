//! The watch daemon against real registries: tags at or above the line's minimum are copied,
//! a tag pushed while it runs arrives within an interval, the history keeps a restart from
//! copying again, a moved mutable tag is followed on request, a repository that cannot be
//! listed is skipped, and SIGTERM stops it cleanly.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::proxy::{FaultProxy, Rule};
use testkit::{Layer, TestRegistry, push_oci_image};

use crate::bundle_support::{assert_success, output_text};
use crate::common::{Daemon, image_transmit, served_digest, stdout_of, workdir, write};

fn push_tag(registry: &TestRegistry, tag: &str, seed: u64) -> String {
    push_oci_image(registry, "team/app", tag, &[Layer::random(seed, 3_000)]).digest
}

fn once(dir: &Path, source: &TestRegistry, target: &TestRegistry, extra: &[&str]) -> Output {
    image_transmit(dir)
        .args([
            "watch",
            "--once",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
        ])
        .args(["--list", "watch.lst"])
        .args(extra)
        .output()
        .unwrap()
}

fn get(url: &str) -> String {
    let output = Command::new("curl").args(["-sf", url]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn new_tags_at_or_above_the_minimum_arrive_and_a_restart_copies_nothing_again() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let below = push_tag(&source, "v0.9", 81_001);
    let at = push_tag(&source, "v1.5", 81_002);
    let above = push_tag(&source, "v1.10", 81_003);
    let dir = workdir();
    write(dir.path(), "watch.lst", "team/app:v1.5\n");

    let daemon = Daemon::start(
        dir.path(),
        &[
            "watch",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "--list",
            "watch.lst",
            "--interval",
            "1",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    daemon.wait_for("the first cycle", Duration::from_secs(30), |out| {
        out.contains("Cycle 1:")
    });
    assert!(
        daemon.output().contains("Cycle 1: 2 copied"),
        "{}",
        daemon.output()
    );
    assert_eq!(served_digest(&target, "team/app", "v1.5"), Some(at));
    assert_eq!(served_digest(&target, "team/app", "v1.10"), Some(above));
    assert_eq!(
        served_digest(&target, "team/app", "v0.9"),
        None,
        "{below} is below v1.5"
    );

    // Pushed while it runs: copied within an interval or two.
    let later = push_tag(&source, "v2.0", 81_004);
    daemon.wait_for("the new tag", Duration::from_secs(20), |_| {
        served_digest(&target, "team/app", "v2.0").is_some()
    });
    assert_eq!(served_digest(&target, "team/app", "v2.0"), Some(later));

    let url = daemon
        .output()
        .lines()
        .find_map(|line| line.split_whitespace().find(|w| w.ends_with("/healthz")))
        .unwrap()
        .trim_end_matches("/healthz")
        .to_string();
    assert_eq!(get(&format!("{url}/healthz")).trim(), "ok");
    let metrics = get(&format!("{url}/metrics"));
    assert!(
        metrics.contains("image_transmit_images_copied_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("image_transmit_last_cycle_duration_seconds"),
        "{metrics}"
    );

    let (code, output) = daemon.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Watch stopped"), "{output}");
    let history = fs_err::read_to_string(dir.path().join("data/history.yaml")).unwrap();
    for tag in ["v1.5", "v1.10", "v2.0"] {
        let key = format!("{}/team/app:{tag}", source.host());
        let stamp = history
            .lines()
            .filter_map(|line| line.split_once(": "))
            .find(|(name, _)| name.trim_matches('"') == key)
            .map(|(_, when)| when.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} not in the history:\n{history}"));
        // `YYYYMMDDHHMMSS`, as the original writes it.
        let entry = &stamp;
        assert!(stamp.chars().all(|c| c.is_ascii_digit()), "{entry}");
        assert_eq!(stamp.len(), 14, "{entry}");
    }

    // A restart: the history says every tag is copied, so nothing is, even a tag the target
    // has lost in the meantime.
    let second = TestRegistry::start();
    let output = once(dir.path(), &source, &second, &[]);
    assert_success(&output);
    assert!(
        stdout_of(&output).contains("0 copied, 0 failed, 3 already copied"),
        "{}",
        output_text(&output)
    );
    assert_eq!(served_digest(&second, "team/app", "v2.0"), None);
}

#[test]
fn a_moved_tag_is_copied_again_only_when_following_mutable_tags() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_tag(&source, "latest", 82_001);
    let dir = workdir();
    write(dir.path(), "watch.lst", "team/app include=^latest$\n");
    assert_success(&once(dir.path(), &source, &target, &[]));

    let moved = push_tag(&source, "latest", 82_002);
    let unchanged = once(dir.path(), &source, &target, &[]);
    assert_success(&unchanged);
    assert_ne!(
        served_digest(&target, "team/app", "latest").as_deref(),
        Some(moved.as_str())
    );

    let followed = once(dir.path(), &source, &target, &["--follow-mutable"]);
    assert_success(&followed);
    assert!(
        stdout_of(&followed).contains("1 copied"),
        "{}",
        output_text(&followed)
    );
    assert_eq!(served_digest(&target, "team/app", "latest"), Some(moved));
}

#[test]
fn a_repository_that_cannot_be_listed_is_skipped_and_the_others_copied() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let digest = push_tag(&source, "1.0", 83_001);
    let dir = workdir();
    write(
        dir.path(),
        "watch.lst",
        "team/missing:1.0\nteam/app:1.0\nteam/app include=( \n",
    );
    let output = once(dir.path(), &source, &target, &[]);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("Cannot list the tags of team/missing:1.0"),
        "{text}"
    );
    assert!(text.contains("Invalid include= pattern"), "{text}");
    assert!(text.contains("1 copied"), "{text}");
    assert_eq!(served_digest(&target, "team/app", "1.0"), Some(digest));
}

#[test]
fn the_original_watch_flags_start_the_daemon() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let digest = push_tag(&source, "3", 84_001);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\ntarget:\n- name: gz\n  registry: {}\ninterval: 3600\n",
            source.url(),
            target.url()
        ),
    );
    write(dir.path(), "img.lst", "team/app:1\n");
    let daemon = Daemon::start(
        dir.path(),
        &["-src=nj", "-dst=gz", "-lst=img.lst", "-watch"],
    );
    daemon.wait_for("the first cycle", Duration::from_secs(30), |out| {
        out.contains("Cycle 1:")
    });
    assert_eq!(served_digest(&target, "team/app", "3"), Some(digest));
    let (code, output) = daemon.terminate();
    assert_eq!(code, Some(0), "{output}");
}

#[test]
fn sigterm_lets_the_image_in_flight_finish_and_starts_no_other() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layers = [
        Layer::random(85_001, 1 << 20),
        Layer::random(85_002, 1 << 20),
    ];
    let digests = [
        push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layers[0])).digest,
        push_oci_image(&source, "team/app", "2", std::slice::from_ref(&layers[1])).digest,
    ];
    let proxy = FaultProxy::start(&source);
    // About two seconds for each image's layer; one image at a time.
    for layer in &layers {
        proxy.add(Rule::slow_body(
            "GET",
            layer.digest(),
            64 * 1024,
            Duration::from_millis(120),
        ));
    }
    let dir = workdir();
    write(dir.path(), "watch.lst", "team/app:1\n");
    let daemon = Daemon::start(
        dir.path(),
        &[
            "watch",
            "--from",
            &proxy.url(),
            "--to",
            &target.url(),
            "--list",
            "watch.lst",
            "--maxconn",
            "1",
        ],
    );
    let reading = proxy.wait_for(Duration::from_secs(30), |seen| {
        seen.method == "GET"
            && layers
                .iter()
                .any(|layer| seen.path.contains(layer.digest()))
    });
    assert!(reading.is_some(), "{:#?}", proxy.requests());

    let (code, output) = daemon.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Cycle 1: 1 copied"), "{output}");
    let arrived: Vec<&str> = ["1", "2"]
        .into_iter()
        .zip(&digests)
        .filter(|(tag, digest)| served_digest(&target, "team/app", tag).as_ref() == Some(*digest))
        .map(|(tag, _)| tag)
        .collect();
    assert_eq!(
        arrived.len(),
        1,
        "the image in flight, and only it: {arrived:?}"
    );
    let history = fs_err::read_to_string(dir.path().join("data/history.yaml")).unwrap();
    for tag in ["1", "2"] {
        assert_eq!(
            history.contains(&format!("team/app:{tag}")),
            arrived.contains(&tag),
            "{history}"
        );
    }
}

#[test]
fn a_bad_cron_expression_is_a_usage_error() {
    let source = TestRegistry::start();
    let dir = workdir();
    write(dir.path(), "watch.lst", "team/app\n");
    write(dir.path(), "cfg.yaml", "interval: \"every ten minutes\"\n");
    let output = image_transmit(dir.path())
        .args(["watch", "--from", &source.url(), "--to", &source.url()])
        .args(["--list", "watch.lst"])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("Invalid cron expression every ten minutes"),
        "{text}"
    );
}

#[test]
fn an_image_that_failed_is_tried_again_next_cycle_and_recorded_once() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(86_001, 20_000);
    let digest = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer)).digest;
    let proxy = FaultProxy::start(&source);
    // The first cycle's one read of the layer (`--retries 0`: no blob retries either) is
    // damaged; the next cycle reads it whole.
    proxy.add(Rule::corrupt_body("GET", layer.digest()).times(1));
    let dir = workdir();
    write(dir.path(), "watch.lst", "team/app\n");
    let cycle = || {
        image_transmit(dir.path())
            .args(["watch", "--once", "--retries", "0", "--from", &proxy.url()])
            .args(["--to", &target.url(), "--list", "watch.lst"])
            .output()
            .unwrap()
    };
    let first = cycle();
    let text = output_text(&first);
    assert_eq!(first.status.code(), Some(1), "{text}");
    assert!(text.contains("0 copied, 1 failed"), "{text}");
    assert_eq!(served_digest(&target, "team/app", "1"), None);

    let second = cycle();
    assert_success(&second);
    assert!(
        stdout_of(&second).contains("1 copied, 0 failed"),
        "{}",
        output_text(&second)
    );
    assert_eq!(served_digest(&target, "team/app", "1"), Some(digest));
    let history = fs_err::read_to_string(dir.path().join("data/history.yaml")).unwrap();
    assert_eq!(history.matches("team/app:1").count(), 1, "{history}");
}
