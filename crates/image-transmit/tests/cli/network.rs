//! Across real networks (issue 14): downloads and uploads that continue after a broken or
//! stalled connection instead of starting again, through `testkit::proxy::FaultProxy` in front
//! of real registries, and the job's bandwidth cap. How close to the cap a job runs, and how
//! many bytes a resume costs, is measured in `bench/`; here only that the cap holds at all (a
//! lower bound on the time, which a slow machine cannot break) and that wrong values are
//! refused.

use std::process::Output;
use std::time::{Duration, Instant};

use testkit::proxy::{FaultProxy, Rule, SeenRequest};
use testkit::{Layer, PushedImage, TestRegistry, push_oci_image};

use crate::bundle_support::{assert_success, line, output_text, save, upload};
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

/// `--FLAG VALUE` on the command line and `KEY: VALUE` in cfg.yaml are each refused with exit
/// status 2, in one sentence containing `flag_says` and `config_says`, before anything is written.
#[track_caller]
fn refused_both_ways(flag: &str, config_line: &str, flag_says: &str, config_says: &str) {
    let dir = workdir();
    let (name, value) = flag.split_once(' ').unwrap();
    let output = image_transmit(dir.path())
        .args(["copy", name, value, "a", "oci:out"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(
        output_text(&output).contains(flag_says),
        "{}",
        output_text(&output)
    );

    write(dir.path(), "cfg.yaml", &format!("{config_line}\n"));
    let output = image_transmit(dir.path())
        .args(["copy", "a", "oci:out", "x:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(
        output_text(&output).contains(config_says),
        "{}",
        output_text(&output)
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_wrong_rate_is_refused_in_one_sentence() {
    refused_both_ways(
        "--limit-rate fast",
        "limitrate: slow",
        "fast is not a valid value for --limit-rate",
        "limitrate: \"slow\" is not a rate",
    );
}

/// `copy SOURCE DESTINATION` of `image`, which must succeed and arrive in `target` (the
/// registry behind DESTINATION); its output.
#[track_caller]
fn copy_arrives(
    source: &str,
    destination: &str,
    target: &TestRegistry,
    image: &PushedImage,
    extra: &[&str],
) -> Output {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .args(["copy", source, destination])
        .args(extra)
        .arg(line(image))
        .output()
        .unwrap();
    assert_success(&output);
    assert_arrived(target, image);
    output
}

/// `target` serves `image` under its tag, digest-exact.
#[track_caller]
fn assert_arrived(target: &TestRegistry, image: &PushedImage) {
    assert_eq!(
        served_digest(target, &image.repository, &image.tag).as_deref(),
        Some(image.digest.as_str())
    );
}

/// A copy from `proxy` (in front of the source) to `target` of `image`, which must arrive; the
/// GET requests for `blob` the proxy saw.
#[track_caller]
fn copy_through(
    proxy: &FaultProxy,
    target: &TestRegistry,
    image: &PushedImage,
    blob: &str,
    extra: &[&str],
) -> Vec<SeenRequest> {
    copy_arrives(&proxy.url(), &target.url(), target, image, extra);
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

/// `(method, Content-Range, status)` of each request of one upload session (one upload UUID).
type UploadLog = Vec<(String, Option<String>, Option<u16>)>;

/// The upload session of each request to `…/blobs/uploads/UUID`.
fn upload_id(path: &str) -> Option<&str> {
    let rest = path.split("/blobs/uploads/").nth(1)?;
    let id = rest.split('?').next()?;
    (!id.is_empty()).then_some(id)
}

/// The requests of the upload whose single-request `PUT` was cut, in order.
fn cut_upload(proxy: &FaultProxy) -> UploadLog {
    let requests = proxy.requests();
    let cut = requests
        .iter()
        .find(|seen| {
            seen.method == "PUT" && seen.status.is_none() && upload_id(&seen.path).is_some()
        })
        .unwrap_or_else(|| panic!("no upload was cut: {requests:#?}"));
    let id = upload_id(&cut.path);
    requests
        .iter()
        .filter(|seen| upload_id(&seen.path) == id)
        .map(|seen| (seen.method.clone(), seen.range.clone(), seen.status))
        .collect()
}

/// A chunk's `Content-Range: FIRST-LAST`.
fn span(range: &Option<String>) -> (u64, u64) {
    let range = range.as_deref().expect("a chunk without Content-Range");
    let (first, last) = range.split_once('-').unwrap();
    (first.parse().unwrap(), last.parse().unwrap())
}

/// Rules for a proxy in front of the target that takes whole requests before it forwards them
/// (as nginx does): the single-request upload of the layer is cut after 3 MiB, which teaches
/// the client a chunk size (half of what it had handed to the connection, which socket buffers
/// make more than what passed), and the third chunk is cut too. The registry never sees a cut
/// request, so it still knows the upload and says how much it holds.
fn cut_twice(proxy: &FaultProxy) {
    proxy.add(Rule::cut_request_body("PUT", "/blobs/uploads/", 3 << 20, false).times(1));
    proxy.add(
        Rule::cut_request_body("PATCH", "/blobs/uploads/", 500_000, false)
            .after(2)
            .times(1),
    );
}

/// What `cut_twice` leads to: after each cut the state of the upload is asked for, and chunks
/// go on from the last byte the registry holds, not from the first.
#[track_caller]
fn assert_continued_where_the_registry_stood(proxy: &FaultProxy, size: u64) {
    let log = cut_upload(proxy);
    let status_query = ("GET".to_string(), None, Some(204));
    assert_eq!(log[1], status_query, "{log:#?}");
    let cut_patch = log
        .iter()
        .position(|(method, _, status)| method == "PATCH" && status.is_none())
        .unwrap_or_else(|| panic!("no chunk was cut: {log:#?}"));
    assert_eq!(log[cut_patch + 1], status_query, "{log:#?}");
    assert_eq!(
        span(&log[cut_patch + 2].1).0,
        span(&log[cut_patch].1).0,
        "{log:#?}"
    );
    let mut next = 0;
    for (method, range, _) in log.iter().filter(|(_, _, status)| *status == Some(202)) {
        assert_eq!(method, "PATCH", "{log:#?}");
        let (first, last) = span(range);
        assert_eq!(first, next, "chunks leave no gap: {log:#?}");
        next = last + 1;
    }
    assert_eq!(next, size, "{log:#?}");
    assert!(span(&log[cut_patch].1).0 > 0, "{log:#?}");
    assert_eq!(
        log.last().unwrap(),
        &("PUT".to_string(), None, Some(201)),
        "{log:#?}"
    );
}

#[test]
fn a_copy_whose_upload_is_cut_goes_on_from_where_the_registry_stands() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_020, 16 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&target);
    cut_twice(&proxy);

    copy_arrives(&source.url(), &proxy.url(), &target, &image, &[]);
    assert_continued_where_the_registry_stood(&proxy, layer.bytes().len() as u64);
}

/// The same cuts on the way from a bundle (`upload`): the bytes from where the registry stands
/// are read again from the bundle's data file.
#[test]
fn a_bundle_upload_that_is_cut_goes_on_from_where_the_registry_stands() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_021, 16 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let dir = workdir();
    let (output, meta) = save(dir.path(), &source.url(), &[&line(&image)]);
    assert_success(&output);
    let proxy = FaultProxy::start(&target);
    cut_twice(&proxy);

    let output = upload(&proxy.url(), &meta, &[]);
    assert_success(&output);
    assert_arrived(&target, &image);
    assert_continued_where_the_registry_stood(&proxy, layer.bytes().len() as u64);
}

/// A cut that reaches the registry (a firewall or tunnel breaking the connection): the CNCF
/// registry then drops the upload, says so when asked, and the layer goes again in a new
/// session, in chunks under the cut.
#[test]
fn an_upload_the_registry_forgot_starts_again_in_a_new_session() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_022, 8 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&target);
    proxy.add(Rule::cut_request_body("PUT", "/blobs/uploads/", 3 << 20, true).times(1));

    let output = copy_arrives(&source.url(), &proxy.url(), &target, &image, &[]);
    // The user is told what the job learned, to set it from the start next time.
    assert!(
        output_text(&output).contains("If this link always cuts connections, set chunksize: "),
        "{}",
        output_text(&output)
    );
    let forgotten = cut_upload(&proxy);
    assert_eq!(
        forgotten,
        vec![
            ("PUT".to_string(), None, None),
            ("GET".to_string(), None, Some(404)),
        ]
    );
    // The new session: every chunk answered, from the first byte to the last.
    let requests = proxy.requests();
    let cut_at = requests
        .iter()
        .position(|seen| seen.method == "PUT" && seen.status.is_none())
        .unwrap();
    let chunks: Vec<(u64, u64)> = requests[cut_at..]
        .iter()
        .filter(|seen| seen.method == "PATCH" && seen.body_len > 0)
        .map(|seen| span(&seen.range))
        .collect();
    assert_eq!(
        chunks.first().map(|chunk| chunk.0),
        Some(0),
        "{requests:#?}"
    );
    assert_eq!(
        chunks.last().map(|chunk| chunk.1 + 1),
        Some(layer.bytes().len() as u64),
        "{requests:#?}"
    );
}

/// A proxy in front of the target that refuses request bodies over 2 MiB (413, as nginx's
/// `client_max_body_size` does): the upload halves its chunks until they pass, and the layer
/// arrives.
#[test]
fn an_upload_refused_as_too_large_goes_on_in_smaller_chunks() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_023, 6 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&target);
    for method in ["PUT", "PATCH"] {
        proxy.add(Rule::status(method, "/blobs/uploads/", 413).body_over(2 << 20));
    }

    copy_arrives(&source.url(), &proxy.url(), &target, &image, &[]);
    let requests = proxy.requests();
    let refused = requests
        .iter()
        .find(|seen| seen.method == "PUT" && seen.status == Some(413))
        .unwrap_or_else(|| panic!("no upload was refused: {requests:#?}"));
    let layer_upload = upload_id(&refused.path);
    let chunks: Vec<u64> = requests
        .iter()
        .filter(|seen| upload_id(&seen.path) == layer_upload)
        .filter(|seen| seen.method == "PATCH" && seen.status == Some(202))
        .map(|seen| seen.body_len)
        .collect();
    assert!(
        chunks.iter().all(|&length| length <= 2 << 20),
        "{requests:#?}"
    );
    assert_eq!(
        chunks.iter().sum::<u64>(),
        layer.bytes().len() as u64,
        "{requests:#?}"
    );
}

/// `--chunk-size` sends uploads in chunks from the start, for a link whose proxy is known to
/// cut: no request carries more, and no blob goes in one request.
#[test]
fn chunk_size_sends_every_upload_in_chunks_of_at_most_that_size() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_024, 3 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&target);

    let output = copy_arrives(
        &source.url(),
        &proxy.url(),
        &target,
        &image,
        &["--chunk-size", "1M"],
    );
    assert!(
        !output_text(&output).contains("chunksize"),
        "{}",
        output_text(&output)
    );
    let requests = proxy.requests();
    let uploads: Vec<&SeenRequest> = requests
        .iter()
        .filter(|seen| upload_id(&seen.path).is_some() && seen.body_len > 0)
        .collect();
    assert!(
        uploads
            .iter()
            .all(|seen| seen.method == "PATCH" && seen.body_len <= 1 << 20),
        "{uploads:#?}"
    );
    let moved: u64 = uploads.iter().map(|seen| seen.body_len).sum();
    assert!(moved >= layer.bytes().len() as u64, "{uploads:#?}");
}

#[test]
fn a_wrong_chunk_size_is_refused_in_one_sentence() {
    refused_both_ways(
        "--chunk-size 1K",
        "chunksize: huge",
        "1K is not a valid value for --chunk-size",
        "chunksize: \"huge\" is not a size of 64K or more",
    );
}

/// A registry that sets a smallest chunk (`OCI-Chunk-Min-Length` on the answer that opens an
/// upload, added here by the proxy) gets no chunk below it but the last, whatever
/// `--chunk-size` asks for.
#[test]
fn chunks_respect_the_registrys_smallest_chunk() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let layer = Layer::random(140_025, 4 << 20);
    let image = push_oci_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    let proxy = FaultProxy::start(&target);
    let smallest: u64 = 3 << 19;
    proxy.add(Rule::add_header(
        "POST",
        "/blobs/uploads/",
        "OCI-Chunk-Min-Length",
        &smallest.to_string(),
    ));

    copy_arrives(
        &source.url(),
        &proxy.url(),
        &target,
        &image,
        &["--chunk-size", "1M"],
    );
    let requests = proxy.requests();
    // Chunk lengths of each upload session, in the order they went.
    let mut sessions: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for seen in requests.iter().filter(|seen| seen.method == "PATCH") {
        if let Some(id) = upload_id(&seen.path) {
            sessions.entry(id).or_default().push(seen.body_len);
        }
    }
    let layer_chunks = sessions
        .values()
        .find(|chunks| chunks.iter().sum::<u64>() == layer.bytes().len() as u64)
        .unwrap_or_else(|| panic!("no upload carried the layer: {requests:#?}"));
    let (last, others) = layer_chunks.split_last().unwrap();
    assert!(!others.is_empty(), "{layer_chunks:?}");
    assert!(
        others.iter().all(|&length| length == smallest),
        "{layer_chunks:?}"
    );
    assert!(*last <= smallest, "{layer_chunks:?}");
}
