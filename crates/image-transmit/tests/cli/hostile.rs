//! A registry that misbehaves on purpose (the fault proxy in front of a real one): whatever it
//! sends, a job ends with one clear sentence, in bounded memory and time.

use std::process::Output;
#[cfg(unix)]
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::proxy::{Fault, FaultProxy, Rule};
use testkit::{Layer, TestRegistry, push_oci_image, push_oci_index};

use crate::bundle_support::output_text;
use crate::common::{image_transmit, served_digest, workdir, write};

/// Runs `command` to its end and measures its peak resident memory (VmHWM, read from /proc
/// while it runs), in MiB.
#[cfg(unix)]
fn run_measured(mut command: Command) -> (Output, u64) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let mut peak_kib = 0;
    let watcher = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_secs(120) {
            let Ok(status) = fs_err::read_to_string(&status_file) else {
                break;
            };
            let Some(high_water) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches(" kB").parse::<u64>().ok())
            else {
                break;
            };
            peak_kib = peak_kib.max(high_water);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak_kib
    });
    let output = child.wait_with_output().unwrap();
    let peak_kib = watcher.join().unwrap();
    (output, peak_kib / 1024)
}

/// The binary under test as a plain process, set up as [`image_transmit`] sets it up.
#[cfg(unix)]
fn plain_command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("image-transmit"));
    command
        .current_dir(dir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("lang")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    command
}

fn source_with_app() -> (TestRegistry, FaultProxy) {
    let source = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(99_001, 4_000)]);
    let proxy = FaultProxy::start(&source);
    (source, proxy)
}

/// `copy team/app:1` from a source whose manifest answers are `status` with a body that never
/// ends: the exit status, the output, the peak memory in MiB, and whether the target got it.
#[cfg(unix)]
fn copy_from_endless_manifests(status: u16) -> (Option<i32>, String, u64, bool) {
    let (_source, proxy) = source_with_app();
    let target = TestRegistry::start();
    proxy.add(Rule::endless_body("GET", "/manifests/", status));
    let dir = workdir();
    let (output, peak_mib) = run_measured(plain_command(
        dir.path(),
        &[
            "copy",
            "--from",
            &proxy.url(),
            "--to",
            &target.url(),
            "--retries",
            "0",
            "team/app:1",
        ],
    ));
    let text = output_text(&output);
    assert!(!text.contains("panicked"), "{text}");
    let copied = served_digest(&target, "team/app", "1").is_some();
    (output.status.code(), text, peak_mib, copied)
}

/// A manifest answer that never ends is refused once it passes 4 MiB, not read into memory
/// (3.2 GB peak before).
#[cfg(unix)]
#[test]
fn a_manifest_that_never_ends_is_refused_in_bounded_memory() {
    let (code, text, peak_mib, copied) = copy_from_endless_manifests(200);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("larger than any real manifest"), "{text}");
    assert!(peak_mib < 64, "peak {peak_mib} MiB\n{text}");
    assert!(!copied);
}

/// An error answer whose body never ends: the first few KiB explain it, the rest is not read.
#[cfg(unix)]
#[test]
fn an_error_body_that_never_ends_is_cut_short() {
    let (code, text, peak_mib, copied) = copy_from_endless_manifests(500);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("500"), "{text}");
    assert!(peak_mib < 64, "peak {peak_mib} MiB\n{text}");
    assert!(!copied);
}

/// A tag list whose `next` link points back at itself ends the listing with a sentence that
/// names the repository, instead of a cycle that never ends.
#[test]
fn a_tag_list_whose_pages_loop_ends_the_listing() {
    let (_source, proxy) = source_with_app();
    let target = TestRegistry::start();
    proxy.add(Rule::new(
        "GET",
        "/tags/list",
        Fault::Respond {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (
                    "Link".into(),
                    "</v2/team/app/tags/list?n=1&last=1>; rel=\"next\"".into(),
                ),
            ],
            body: br#"{"name":"team/app","tags":["1"]}"#.to_vec(),
        },
    ));
    let dir = workdir();
    write(dir.path(), "watch.txt", "team/app\n");
    let started = Instant::now();
    let output = image_transmit(dir.path())
        .args([
            "watch",
            "--from",
            &proxy.url(),
            "--to",
            &target.url(),
            "--list",
            "watch.txt",
            "--once",
        ])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert!(started.elapsed() < Duration::from_secs(60), "{text}");
    assert!(text.contains("pages never end"), "{text}");
    assert!(text.contains("team/app"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// A meta file with no images (empty, cut short, or hand-trimmed) is an error for every command
/// that reads bundles, never "0 images, 0 faults" with exit status 0.
#[test]
fn a_meta_with_no_images_is_an_error_everywhere() {
    let target = TestRegistry::start();
    let dir = workdir();
    write(dir.path(), "empty_meta.yaml", "");
    write(
        dir.path(),
        "trimmed_meta.yaml",
        "blobs: {}\nmanifests: {}\n",
    );
    for meta in ["empty_meta.yaml", "trimmed_meta.yaml"] {
        for args in [
            vec!["verify", meta],
            vec!["upload", "--to", &target.url(), meta],
        ] {
            let output = image_transmit(dir.path()).args(&args).output().unwrap();
            let text = output_text(&output);
            assert!(!output.status.success(), "{args:?}: {text}");
            assert!(text.contains("lists no images"), "{args:?}: {text}");
            assert!(!text.contains("panicked"), "{args:?}: {text}");
        }
    }
}

/// A data file that is a symbolic link (to a file outside the bundle, or anywhere) is refused
/// before anything is read or pushed, naming the file.
#[cfg(unix)]
#[test]
fn a_data_file_that_is_a_symbolic_link_is_refused() {
    let (source, _proxy) = source_with_app();
    let target = TestRegistry::start();
    let dir = workdir();
    let (_, meta) = crate::bundle_support::save(dir.path(), &source.url(), &["team/app:1"]);
    let folder = meta.parent().unwrap();
    let data = fs_err::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    let elsewhere = dir.path().join("elsewhere.tar");
    fs_err::rename(&data, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &data).unwrap();
    for args in [
        vec!["verify".to_string(), meta.display().to_string()],
        vec![
            "upload".to_string(),
            "--to".to_string(),
            target.url(),
            meta.display().to_string(),
        ],
    ] {
        let output = image_transmit(dir.path()).args(&args).output().unwrap();
        let text = output_text(&output);
        assert!(!output.status.success(), "{args:?}: {text}");
        assert!(text.contains("is a symbolic link"), "{args:?}: {text}");
    }
    assert_eq!(served_digest(&target, "team/app", "1"), None);
}

/// An original-format meta whose base marker names a path (`…:../../etc/passwd`) instead of a
/// base meta file beside it is refused as a damaged or hostile meta; nothing is opened there.
#[test]
fn a_base_marker_that_names_a_path_is_refused() {
    let target = TestRegistry::start();
    let dir = workdir();
    let hex = "a".repeat(64);
    write(
        dir.path(),
        "x_meta.yaml",
        &format!(
            "blobs:\n  {hex}:\n  - https://last.img/skip/it:../../../../etc/passwd\n\
             manifests:\n  team/app:1: '{{}}'\ndatafiles: {{}}\n"
        ),
    );
    for args in [
        vec!["verify", "x_meta.yaml"],
        vec!["upload", "--to", &target.url(), "x_meta.yaml"],
    ] {
        let output = image_transmit(dir.path()).args(&args).output().unwrap();
        let text = output_text(&output);
        assert!(!output.status.success(), "{args:?}: {text}");
        assert!(text.contains("not a plain file name"), "{args:?}: {text}");
    }
}

/// `--out` (and cfg.yaml's `outprefix`) cannot put a bundle outside `data/`.
#[test]
fn an_output_prefix_outside_the_data_folder_is_refused() {
    let (source, _proxy) = source_with_app();
    let dir = workdir();
    for prefix in ["../../x", "/tmp/x", "a/../../x", "C:\\x"] {
        let output = image_transmit(dir.path())
            .args([
                "save",
                "--from",
                &source.url(),
                "--out",
                prefix,
                "team/app:1",
            ])
            .output()
            .unwrap();
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{prefix}: {text}");
        assert!(text.contains("outside the data folder"), "{prefix}: {text}");
    }
    assert!(!dir.path().join("x").exists());
}

/// A target that sends the upload to another origin (its `Location`) does not get the target's
/// password sent there: credentials go only to the registry's own scheme, host and port.
#[test]
fn credentials_do_not_follow_an_upload_to_another_origin() {
    let (source, _proxy) = source_with_app();
    let target = TestRegistry::start_with_auth("deployer", "s3cret-upload");
    let front = FaultProxy::start(&target);
    let elsewhere = FaultProxy::start(&target);
    front.add(Rule::new(
        "POST",
        "/blobs/uploads/",
        Fault::Respond {
            status: 202,
            headers: vec![(
                "Location".into(),
                format!("{}/v2/team/app/blobs/uploads/elsewhere", elsewhere.url()),
            )],
            body: Vec::new(),
        },
    ));
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "target:\n- name: site\n  registry: {}\n  user: deployer\n  password: s3cret-upload\n",
            front.url()
        ),
    );
    let output = image_transmit(dir.path())
        .args([
            "copy",
            "--from",
            &source.url(),
            "--to",
            "site",
            "--retries",
            "0",
            "team/app:1",
        ])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert!(!text.contains("s3cret-upload"), "{text}");
    assert!(
        front.requests().iter().any(|seen| seen.authorized),
        "the target's own requests carry the login: {:#?}",
        front.requests()
    );
    let sent_elsewhere = elsewhere.requests();
    assert!(!sent_elsewhere.is_empty(), "{text}");
    assert!(
        sent_elsewhere.iter().all(|seen| !seen.authorized),
        "credentials went to another origin: {sent_elsewhere:#?}"
    );
}

/// A password written into a registry address on the command line is never printed back.
#[test]
fn a_password_in_an_address_is_not_printed() {
    let dir = workdir();
    for args in [
        [
            "copy",
            "--from",
            "http://user:pa55word@127.0.0.1:1",
            "--to",
            "127.0.0.1:2",
        ],
        [
            "copy",
            "--from",
            "127.0.0.1:1",
            "--to",
            "https://ops:pa55word@127.0.0.1:2/ns",
        ],
    ] {
        let output = image_transmit(dir.path())
            .args(args)
            .arg("team/app:1")
            .output()
            .unwrap();
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(!text.contains("pa55word"), "{text}");
        assert!(text.contains(":***@"), "{text}");
    }
}

/// `copy --retries 0 --stall-timeout 2` with `layer`'s transfer held up by `rule` (on the source
/// proxy when `on_source`, else on one in front of the target): the output, how long it took,
/// and how many times the layer was asked for or offered.
fn copy_with_a_stall(on_source: bool, rule: impl Fn(&str) -> Rule) -> (Output, Duration, usize) {
    let source = TestRegistry::start();
    let layer = Layer::random(99_002, 200_000);
    push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let target = TestRegistry::start();
    let source_proxy = FaultProxy::start(&source);
    let target_proxy = FaultProxy::start(&target);
    let faulty = if on_source {
        &source_proxy
    } else {
        &target_proxy
    };
    faulty.add(rule(layer.digest()));
    // Asking for the rest of the blob (a resumed download) gets an answer but no byte.
    faulty.add(Rule::hang_body(
        "GET",
        &format!("/blobs/{}", layer.digest()),
        0,
    ));
    let dir = workdir();
    let started = Instant::now();
    let output = image_transmit(dir.path())
        .args([
            "copy",
            "--from",
            &source_proxy.url(),
            "--to",
            &target_proxy.url(),
            "--retries",
            "0",
            "--stall-timeout",
            "2",
            "team/app:1",
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    // A resumed download (a request for the rest) continues a try; it does not start one.
    let tries = faulty
        .requests()
        .iter()
        .filter(|request| request.faulted && request.range.is_none())
        .count();
    assert_eq!(served_digest(&target, "team/app", "1"), None);
    (output, elapsed, tries)
}

/// A source that stops sending in the middle of a blob, and sends nothing either when the rest
/// is asked for on a new connection, is given up after the stall timeout (not 120 s per try,
/// three tries whatever `--retries` said), and the sentence names the source, not the target.
#[test]
fn a_source_that_stops_sending_is_named_after_the_stall_timeout() {
    let (output, elapsed, tries) = copy_with_a_stall(true, |digest| {
        Rule::hang_body("GET", &format!("/blobs/{digest}"), 16_000).times(1)
    });
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("The source 127.0.0.1"), "{text}");
    assert!(text.contains("sent nothing for 2 s"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(tries, 1, "--retries 0 means one try\n{text}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}\n{text}");
}

/// A target that stops taking an upload half-way (and never answers) is named as the one that
/// stalled.
#[test]
fn a_target_that_stops_taking_an_upload_is_named_after_the_stall_timeout() {
    let (output, elapsed, tries) = copy_with_a_stall(false, |digest| {
        Rule::stop_reading("PUT", "/blobs/uploads/", 50_000)
            .and_path_contains(digest.trim_start_matches("sha256:"))
            .only_with_body()
    });
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("The destination 127.0.0.1"), "{text}");
    assert!(text.contains("for 2 s while receiving blob"), "{text}");
    assert_eq!(tries, 1, "--retries 0 means one try\n{text}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}\n{text}");
}

/// A multi-platform bundle whose child manifest text was altered (one space added: still valid
/// JSON, another digest) fails `verify`, naming the image and the child, as upload would refuse
/// it later.
#[test]
fn verify_checks_each_child_manifest_against_its_digest() {
    let source = TestRegistry::start();
    let index = push_oci_index(
        &source,
        "team/multi",
        "1",
        &[("linux", "amd64"), ("linux", "arm64")],
        &[Layer::random(99_003, 3_000)],
        2_000,
    );
    let dir = workdir();
    let (_, meta) = crate::bundle_support::save(dir.path(), &source.url(), &["team/multi:1"]);
    let sound = crate::bundle_support::verify(&meta);
    assert!(sound.status.success(), "{}", output_text(&sound));
    let child = &index.children[1];
    let stored = format!("\"{}\": \"{{", child.digest);
    let text = fs_err::read_to_string(&meta).unwrap();
    assert!(text.contains(&stored), "{text}");
    fs_err::write(&meta, text.replacen(&stored, &format!("{stored} "), 1)).unwrap();
    let output = crate::bundle_support::verify(&meta);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("team/multi:1"), "{text}");
    assert!(text.contains("is damaged or altered"), "{text}");
    assert!(text.contains(&child.digest[..19]), "{text}");
}

/// `--json FILE` leaves a report for every outcome: a refused login, an unreachable registry and
/// a usage error each write one with no images, the sentence shown and the exit status, and no
/// password.
#[test]
fn a_json_report_is_written_when_the_job_cannot_start() {
    let (source, _proxy) = source_with_app();
    let guarded = TestRegistry::start_with_auth("pusher", "right-pass");
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "target:\n- name: guarded\n  registry: {}\n  user: pusher\n  password: wrong-pass\n",
            guarded.url()
        ),
    );
    let cases: [(&str, Vec<String>, i64); 3] = [
        (
            "login",
            vec![
                "copy".into(),
                "--from".into(),
                source.url(),
                "--to".into(),
                "guarded".into(),
            ],
            1,
        ),
        (
            "unreachable",
            vec![
                "copy".into(),
                "--from".into(),
                unreachable,
                "--to".into(),
                guarded.url(),
            ],
            1,
        ),
        (
            "usage",
            vec![
                "save".into(),
                "--from".into(),
                source.url(),
                "--out".into(),
                "../../x".into(),
            ],
            2,
        ),
    ];
    for (case, args, status) in cases {
        let report = dir.path().join(format!("{case}.json"));
        let output = image_transmit(dir.path())
            .args(&args)
            .args([
                "--retries",
                "0",
                "--json",
                report.to_str().unwrap(),
                "team/app:1",
            ])
            .output()
            .unwrap();
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(status as i32), "{case}: {text}");
        let written = fs_err::read_to_string(&report)
            .unwrap_or_else(|e| panic!("{case}: no report ({e})\n{text}"));
        let document: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(document["exit_status"], status, "{case}: {written}");
        assert_eq!(document["summary"]["total"], 0, "{case}: {written}");
        assert_eq!(document["command"], args[0].as_str(), "{case}: {written}");
        let error = document["error"].as_str().unwrap();
        assert!(
            !error.is_empty() && text.contains(error),
            "{case}: {written}\n{text}"
        );
        assert!(!written.contains("wrong-pass"), "{case}: {written}");
    }
}

/// A notification receiver that answers with a body that never ends costs the job neither
/// memory nor its outcome: only the start of the answer is read.
#[cfg(unix)]
#[test]
fn a_webhook_answer_that_never_ends_is_cut_short() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = stream;
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n");
                let filler = vec![b' '; 1 << 16];
                while stream.write_all(&filler).is_ok() {}
            });
        }
    });
    let (source, _proxy) = source_with_app();
    let target = TestRegistry::start();
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!("webhook:\n- url: {hook}\n"),
    );
    let (output, peak_mib) = run_measured(plain_command(
        dir.path(),
        &[
            "copy",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "team/app:1",
        ],
    ));
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(peak_mib < 64, "peak {peak_mib} MiB\n{text}");
    assert!(served_digest(&target, "team/app", "1").is_some());
}

/// A registry whose tag list goes on forever, each page linking to a new one: the listing ends
/// with a sentence naming the repository once it passes any real repository's size, in
/// bounded memory.
#[cfg(unix)]
#[test]
fn a_tag_list_that_never_ends_is_cut_short_in_bounded_memory() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (link, body) = match path.split_once("last=") {
                        _ if !path.contains("/tags/list") => (String::new(), "{}".to_string()),
                        page => {
                            let page: u64 = page.map_or(0, |(_, n)| n.parse().unwrap_or(0));
                            let tags: Vec<String> = (0..1000)
                                .map(|i| format!("\"{page:08}-{i:04}-{}\"", "x".repeat(40)))
                                .collect();
                            (
                                format!(
                                    "Link: </v2/team/app/tags/list?n=1000&last={}>; rel=\"next\"\r\n",
                                    page + 1
                                ),
                                format!("{{\"name\":\"team/app\",\"tags\":[{}]}}", tags.join(",")),
                            )
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{link}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(body.as_bytes()).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let target = TestRegistry::start();
    let dir = workdir();
    write(dir.path(), "watch.txt", "team/app\n");
    let started = Instant::now();
    let (output, peak_mib) = run_measured(plain_command(
        dir.path(),
        &[
            "watch",
            "--from",
            &registry,
            "--to",
            &target.url(),
            "--list",
            "watch.txt",
            "--once",
        ],
    ));
    let text = output_text(&output);
    assert!(started.elapsed() < Duration::from_secs(60), "{text}");
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("pages never end"), "{text}");
    assert!(text.contains("team/app"), "{text}");
    assert!(peak_mib < 64, "peak {peak_mib} MiB\n{text}");
}

/// A bundle whose manifest lists 20,000 layers is refused at once with one sentence, before a
/// single blob is asked about at the target (it used to send ~95,000 HEADs first).
#[test]
fn a_manifest_with_more_layers_than_any_image_is_refused_before_any_transfer() {
    let target = TestRegistry::start();
    let proxy = FaultProxy::start(&target);
    let dir = workdir();
    let descriptor = |n: usize| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{n:064x}","size":1}}"#
        )
    };
    let layers: Vec<String> = (1..=20_000).map(descriptor).collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
        descriptor(0).replace("layer.v1.tar+gzip", "config.v1+json"),
        layers.join(",")
    );
    write(
        dir.path(),
        "huge_meta.yaml",
        &format!("datafiles: {{}}\nblobs: {{}}\nmanifests:\n  team/app:1: '{manifest}'\n"),
    );
    let started = Instant::now();
    let output = image_transmit(dir.path())
        .args(["upload", "--to", &proxy.url(), "huge_meta.yaml"])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("lists 20000 layers"), "{text}");
    assert!(text.contains("more than any real image"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let asked: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|request| request.path.contains("/blobs/"))
        .collect();
    assert!(asked.is_empty(), "{} blob requests", asked.len());
}

/// A meta file with more blobs than any real bundle (1.86 million, 176 MB: 1.18 GB of memory
/// before) is refused before it is read; one just under the size limit but with 600,000 blobs
/// is refused while it is read. Each with one sentence.
#[cfg(unix)]
#[test]
fn a_meta_with_more_blobs_than_any_bundle_is_refused_in_bounded_memory() {
    use std::io::Write;
    let dir = workdir();
    for (name, blobs, peak_limit_mib) in [
        ("huge_meta.yaml", 1_860_000, 64),
        ("many_meta.yaml", 600_000, 320),
    ] {
        let file = fs_err::File::create(dir.path().join(name)).unwrap();
        let mut file = std::io::BufWriter::new(file);
        file.write_all(b"datafiles: {}\nblobs:\n").unwrap();
        for blob in 0..blobs {
            writeln!(file, "  {blob:064x}:\n  - http://10.0.0.1/team/app:1").unwrap();
        }
        file.write_all(b"manifests:\n  team/app:1: '{}'\n").unwrap();
        file.flush().unwrap();
        drop(file);
        let (output, peak_mib) = run_measured(plain_command(dir.path(), &["verify", name]));
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {text}");
        assert!(text.contains("than any real bundle's"), "{name}: {text}");
        assert!(!text.contains("panicked"), "{name}: {text}");
        assert!(
            peak_mib < peak_limit_mib,
            "{name}: peak {peak_mib} MiB\n{text}"
        );
    }
}
