//! Engine tests at the trait seams (issue 12): the copy job between in-memory sources,
//! destinations and loaders (and a real OCI layout), with every call the engine makes to the
//! destination recorded and checked exactly: blobs shared between images move once, a refused
//! mount falls back to an upload, failed transfers are retried as `retries` allows, a cancelled
//! image never gets its tag, platform filters, stalls on either side, corrupt content, and the
//! bytes of the `docker save` archive a container engine is given.

#[path = "seams/memory.rs"]
mod memory;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::plan::{self, ImagePair, ListOptions};
use engine::transport::oci_layout::OciLayoutSource;
use engine::transport::{ImageSource, ManifestRole};
use engine::{
    CopyJob, CopyOptions, Error, Event, ImageStatus, JobReport, PlatformFilter, Sink, StallSide,
};
use registry::manifest::{self, ParsedManifest};
use registry::{Digest, RetryPolicy};
use tokio_util::sync::CancellationToken;

use memory::{
    CHUNK, Call, Counted, LoadCall, MemDest, MemLoader, MemSource, Recorder, Serve, Take,
    TestImage, layer,
};

/// The stall timeout of the stall tests.
const STALL: Duration = Duration::from_millis(300);

/// Quick retries, no stall unless a test asks for one.
fn options(retries: u32) -> CopyOptions {
    CopyOptions {
        max_connections: 4,
        retries,
        backoff: RetryPolicy {
            retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        },
        stall_timeout: Duration::from_secs(20),
        ..CopyOptions::default()
    }
}

fn pairs(lines: &[&str]) -> Vec<ImagePair> {
    let lines: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    let (pairs, invalid) = plan::plan(&lines, &ListOptions::default());
    assert!(invalid.is_empty(), "{invalid:?}");
    pairs
}

struct Run {
    report: JobReport,
    events: Vec<Event>,
    elapsed: Duration,
}

async fn run(
    source: Arc<dyn ImageSource>,
    sink: Sink,
    options: CopyOptions,
    lines: &[&str],
) -> Run {
    run_until(source, sink, options, lines, CancellationToken::new()).await
}

async fn run_until(
    source: Arc<dyn ImageSource>,
    sink: Sink,
    options: CopyOptions,
    lines: &[&str],
    cancel: CancellationToken,
) -> Run {
    let recorder = Arc::new(Recorder::default());
    let job = CopyJob::new(source, sink, options, recorder.clone(), cancel);
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(10), job.run(pairs(lines), Vec::new()))
        .await
        .expect("the job did not end within 10 s");
    Run {
        report,
        events: recorder.events(),
        elapsed: started.elapsed(),
    }
}

fn pieces(destination: &Arc<MemDest>) -> Sink {
    Sink::Pieces(destination.clone())
}

#[track_caller]
fn succeeded(report: &JobReport, image: usize) -> (Digest, bool) {
    match &report.images[image].status {
        ImageStatus::Succeeded { digest, unchanged } => (digest.clone(), *unchanged),
        ImageStatus::Failed { error } => panic!("image {image} failed: {error}"),
    }
}

#[track_caller]
fn failed(report: &JobReport, image: usize) -> Arc<Error> {
    match &report.images[image].status {
        ImageStatus::Failed { error } => error.clone(),
        ImageStatus::Succeeded { digest, .. } => panic!("image {image} arrived as {digest}"),
    }
}

fn has(repository: &str, digest: &Digest) -> Call {
    Call::HasBlob(repository.into(), digest.clone())
}

fn put(repository: &str, digest: &Digest) -> Call {
    Call::PutBlob(repository.into(), digest.clone())
}

fn stored(repository: &str, digest: &Digest) -> Call {
    Call::Stored(repository.into(), digest.clone())
}

fn mount(repository: &str, digest: &Digest, from: &str, mounted: bool) -> Call {
    Call::Mount {
        repository: repository.into(),
        digest: digest.clone(),
        from: from.into(),
        mounted,
    }
}

fn asked(repository: &str, reference: &str) -> Call {
    Call::ManifestDigest(repository.into(), reference.into())
}

fn put_manifest(repository: &str, reference: &str, digest: &Digest, role: ManifestRole) -> Call {
    Call::PutManifest {
        repository: repository.into(),
        reference: reference.into(),
        digest: digest.clone(),
        role,
    }
}

/// A plain upload of a blob the destination did not have.
fn uploaded(repository: &str, digest: &Digest) -> Vec<Call> {
    vec![
        has(repository, digest),
        put(repository, digest),
        stored(repository, digest),
    ]
}

/// Writes an OCI image layout holding `tagged` images, each named in `index.json`.
fn write_layout(directory: &Path, tagged: &[(&str, &TestImage)]) {
    std::fs::write(
        directory.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let blobs = directory.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut entries = Vec::new();
    for (name, image) in tagged {
        for (digest, bytes) in &image.blobs {
            std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
        }
        let manifest = &image.manifest;
        std::fs::write(blobs.join(manifest.digest.hex()), &manifest.bytes).unwrap();
        entries.push(serde_json::json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": manifest.bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": name },
        }));
    }
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": entries });
    std::fs::write(
        directory.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// Two images sharing their first layer.
fn two_images_sharing_a_layer() -> (Bytes, TestImage, TestImage) {
    let shared = layer(1, 6000);
    let first = TestImage::new("linux", "amd64", &[&shared, &layer(2, 3000)]);
    let second = TestImage::new("linux", "amd64", &[&shared, &layer(3, 3000)]);
    (shared, first, second)
}

/// A source holding one image of a config and one layer as `app:1`.
fn one_image(serve: Option<Serve>) -> (MemSource, TestImage, Digest) {
    let image = TestImage::new("linux", "amd64", &[&layer(5, 5000)]);
    let layer = image.layers[0].clone();
    let mut source = MemSource::default();
    source.add("app", "1", &image);
    if let Some(serve) = serve {
        source.serve(&layer, serve);
    }
    (source, image, layer)
}

/// A source holding a `linux/amd64` and `linux/arm64` index as `app:1`, the children sharing
/// a layer.
fn two_platforms() -> (MemSource, TestImage, TestImage, TestImage) {
    let shared = layer(10, 4000);
    let amd64 = TestImage::new("linux", "amd64", &[&shared, &layer(11, 3000)]);
    let arm64 = TestImage::new("linux", "arm64", &[&shared, &layer(12, 3000)]);
    let index = TestImage::index(&[("linux", "amd64", &amd64), ("linux", "arm64", &arm64)]);
    let mut source = MemSource::default();
    source.add_manifest(&amd64);
    source.add_manifest(&arm64);
    source.add("app", "1", &index);
    (source, index, amd64, arm64)
}

#[tokio::test]
async fn a_blob_shared_by_images_and_tags_is_uploaded_once() {
    let (shared, first, second) = two_images_sharing_a_layer();
    let layout = tempfile::tempdir().unwrap();
    // Named both ways an OCI layout names images: the bare tag and `repository:tag`.
    write_layout(
        layout.path(),
        &[("1", &first), ("app:2", &second), ("latest", &first)],
    );
    let source = Arc::new(Counted::new(OciLayoutSource::open(layout.path()).unwrap()));
    let destination = Arc::new(MemDest::new());
    let lines = ["app:1", "app:2", "app:latest"];

    let done = run(source.clone(), pieces(&destination), options(0), &lines).await;

    let report = &done.report;
    assert!(report.all_done(), "{report:?}");
    assert_eq!(succeeded(report, 0), (first.manifest.digest.clone(), false));
    assert_eq!(
        succeeded(report, 1),
        (second.manifest.digest.clone(), false)
    );
    assert_eq!(succeeded(report, 2), (first.manifest.digest.clone(), false));
    let mut every_blob: Vec<Digest> = first
        .blobs
        .iter()
        .chain(&second.blobs)
        .map(|(digest, _)| digest.clone())
        .collect();
    every_blob.sort();
    every_blob.dedup();
    assert_eq!(every_blob.len(), 5);
    // Each blob asked about, sent and stored once, whichever image got to it first; the
    // others learnt from the job that it was there and asked nothing.
    for digest in &every_blob {
        assert_eq!(destination.blob_calls(digest), uploaded("app", digest));
    }
    assert_eq!(destination.blobs_touched(), every_blob);
    let mut reads = source.reads();
    reads.sort();
    assert_eq!(reads, every_blob, "every blob read from the layout once");
    assert_eq!(
        destination.blob("app", &Digest::of(&shared)),
        Some(shared.clone())
    );
    assert_eq!(report.blobs_transferred, 5);
    // The shared layer for the second image, and all three blobs for the second tag.
    assert_eq!(report.blobs_existing, 4);
    assert_eq!(report.blobs_mounted, 0);
    assert_eq!(
        report.bytes_transferred,
        every_blob
            .iter()
            .map(|d| destination.blob("app", d).unwrap().len() as u64)
            .sum::<u64>()
    );
    for (tag, image) in [("1", &first), ("2", &second), ("latest", &first)] {
        let calls: Vec<Call> = destination
            .manifest_calls()
            .into_iter()
            .filter(|call| match call {
                Call::ManifestDigest(_, reference) => reference == tag,
                Call::PutManifest { reference, .. } => reference == tag,
                _ => true,
            })
            .collect();
        assert_eq!(
            calls,
            [
                asked("app", tag),
                put_manifest("app", tag, &image.manifest.digest, ManifestRole::Top)
            ]
        );
    }

    // A second run finds every tag in place: one question per image, nothing read or sent.
    let calls_before = destination.calls().len();
    let source = Arc::new(Counted::new(OciLayoutSource::open(layout.path()).unwrap()));
    let again = run(source.clone(), pieces(&destination), options(0), &lines).await;
    assert!(again.report.all_done());
    for (image, digest) in [&first, &second, &first].iter().enumerate() {
        assert_eq!(
            succeeded(&again.report, image),
            (digest.manifest.digest.clone(), true)
        );
    }
    assert_eq!(
        destination.calls()[calls_before..],
        [asked("app", "1"), asked("app", "2"), asked("app", "latest")]
    );
    assert!(source.reads().is_empty());
}

/// Two images sharing a layer, `one/app:1` then `two/app:1`, copied one after the other.
async fn copy_to_two_repositories(destination: &Arc<MemDest>) -> (MemSource, Run, Bytes) {
    let (shared, first, second) = two_images_sharing_a_layer();
    let mut source = MemSource::default();
    source.add("one/app", "1", &first);
    source.add("two/app", "1", &second);
    let source = Arc::new(source);
    let options = CopyOptions {
        max_connections: 1,
        ..options(0)
    };
    let done = run(
        source.clone(),
        pieces(destination),
        options,
        &["one/app:1", "two/app:1"],
    )
    .await;
    assert!(done.report.all_done(), "{:?}", done.report);
    let source = Arc::try_unwrap(source).ok().unwrap();
    (source, done, shared)
}

#[tokio::test]
async fn a_blob_mounted_from_where_the_job_put_it_is_not_uploaded_again() {
    let destination = Arc::new(MemDest::new());
    let (source, done, shared) = copy_to_two_repositories(&destination).await;
    let digest = Digest::of(&shared);
    assert_eq!(
        destination.blob_calls(&digest),
        [
            has("one/app", &digest),
            put("one/app", &digest),
            stored("one/app", &digest),
            // Where the job put it: mounted at once, without asking first.
            mount("two/app", &digest, "one/app", true),
        ]
    );
    assert_eq!(source.reads_of(&digest), 1);
    assert_eq!(destination.blob("two/app", &digest), Some(shared));
    assert_eq!(done.report.blobs_mounted, 1);
    assert_eq!(done.report.blobs_transferred, 5);
}

#[tokio::test]
async fn a_refused_mount_falls_back_to_an_upload() {
    let destination = Arc::new(MemDest::new().without_mounts());
    let (source, done, shared) = copy_to_two_repositories(&destination).await;
    let digest = Digest::of(&shared);
    assert_eq!(
        destination.blob_calls(&digest),
        [
            has("one/app", &digest),
            put("one/app", &digest),
            stored("one/app", &digest),
            mount("two/app", &digest, "one/app", false),
            has("two/app", &digest),
            put("two/app", &digest),
            stored("two/app", &digest),
        ]
    );
    assert_eq!(source.reads_of(&digest), 2);
    assert_eq!(destination.blob("two/app", &digest), Some(shared));
    assert_eq!(done.report.blobs_mounted, 0);
    assert_eq!(done.report.blobs_transferred, 6);
}

#[tokio::test]
async fn a_blob_the_source_says_is_in_the_destination_is_mounted_without_reading_it() {
    let base = layer(20, 4000);
    let digest = Digest::of(&base);
    let image = TestImage::new("linux", "amd64", &[&base, &layer(21, 2000)]);
    let mut source = MemSource::default();
    source.add("app", "1", &image);
    source.hint(&digest, "base/lib");
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new().holding("base/lib", &base));

    let done = run(source.clone(), pieces(&destination), options(0), &["app:1"]).await;

    assert!(done.report.all_done(), "{:?}", done.report);
    assert_eq!(
        destination.blob_calls(&digest),
        [has("app", &digest), mount("app", &digest, "base/lib", true)]
    );
    assert_eq!(source.reads_of(&digest), 0);
    assert_eq!(done.report.blobs_mounted, 1);
    assert_eq!(done.report.blobs_transferred, 2);
}

/// `app:1` whose layer the destination fails once after reading it whole.
async fn copy_with_one_failed_upload(retries: u32) -> (Run, Arc<MemSource>, Arc<MemDest>, Digest) {
    let (source, _, layer) = one_image(None);
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new().taking(&layer, Take::FailAfterBody { times: 1 }));
    let done = run(
        source.clone(),
        pieces(&destination),
        options(retries),
        &["app:1"],
    )
    .await;
    (done, source, destination, layer)
}

#[tokio::test]
async fn a_failed_upload_is_sent_again_when_retries_allow() {
    let (done, source, destination, layer) = copy_with_one_failed_upload(1).await;
    assert!(done.report.all_done(), "{:?}", done.report);
    assert_eq!(
        destination.blob_calls(&layer),
        [
            has("app", &layer),
            put("app", &layer),
            Call::PutFailed("app".into(), layer.clone()),
            put("app", &layer),
            stored("app", &layer),
        ]
    );
    assert_eq!(
        source.reads_of(&layer),
        2,
        "each upload reads the source anew"
    );
    let (digest, _) = succeeded(&done.report, 0);
    assert_eq!(
        destination.manifest_calls(),
        [
            asked("app", "1"),
            put_manifest("app", "1", &digest, ManifestRole::Top)
        ]
    );
    // The blob's own retry mended it: the image was not retried.
    assert!(
        !done
            .events
            .iter()
            .any(|e| matches!(e, Event::ImageRetrying { .. }))
    );
}

#[tokio::test]
async fn a_failed_upload_fails_the_image_without_retries() {
    let (done, source, destination, layer) = copy_with_one_failed_upload(0).await;
    let error = failed(&done.report, 0);
    assert!(
        matches!(&*error, Error::Registry(registry::Error::Transfer { host, .. }) if host == "memory destination"),
        "{error:?}"
    );
    assert_eq!(
        destination.blob_calls(&layer),
        [
            has("app", &layer),
            put("app", &layer),
            Call::PutFailed("app".into(), layer.clone()),
        ]
    );
    assert_eq!(source.reads_of(&layer), 1);
    assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
}

#[tokio::test]
async fn a_broken_source_read_is_retried_from_the_start() {
    for retries in [0, 1] {
        let (source, image, layer) = one_image(Some(Serve::BreakAfter {
            bytes: 1500,
            times: 1,
        }));
        let source = Arc::new(source);
        let destination = Arc::new(MemDest::new());
        let done = run(
            source.clone(),
            pieces(&destination),
            options(retries),
            &["app:1"],
        )
        .await;

        let broke = Call::BodyBroke {
            repository: "app".into(),
            digest: layer.clone(),
            received: 1500,
        };
        if retries == 0 {
            let error = failed(&done.report, 0);
            assert!(
                matches!(&*error, Error::Registry(registry::Error::Transfer { host, .. }) if host == "memory source"),
                "the source's error, not what the destination made of it: {error:?}"
            );
            assert_eq!(
                destination.blob_calls(&layer),
                [has("app", &layer), put("app", &layer), broke]
            );
            assert_eq!(source.reads_of(&layer), 1);
            assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
        } else {
            assert!(done.report.all_done(), "{:?}", done.report);
            assert_eq!(
                destination.blob_calls(&layer),
                [
                    has("app", &layer),
                    put("app", &layer),
                    broke,
                    put("app", &layer),
                    stored("app", &layer),
                ]
            );
            assert_eq!(source.reads_of(&layer), 2);
            assert_eq!(
                destination.blob("app", &layer),
                Some(image.bytes_of(&layer))
            );
            // What moved, the broken attempt's bytes included.
            assert_eq!(done.report.bytes_transferred, image.size() + 1500);
        }
    }
}

#[tokio::test]
async fn blob_retries_run_out_before_the_image_is_retried() {
    // Two broken reads: the blob's own tries (1 + retries) are spent, the image's retry then
    // starts over, asking the destination again.
    let (source, image, layer) = one_image(Some(Serve::BreakAfter {
        bytes: 1500,
        times: 2,
    }));
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new());
    let done = run(source.clone(), pieces(&destination), options(1), &["app:1"]).await;

    assert!(done.report.all_done(), "{:?}", done.report);
    let broke = Call::BodyBroke {
        repository: "app".into(),
        digest: layer.clone(),
        received: 1500,
    };
    assert_eq!(
        destination.blob_calls(&layer),
        [
            has("app", &layer),
            put("app", &layer),
            broke.clone(),
            put("app", &layer),
            broke,
            has("app", &layer),
            put("app", &layer),
            stored("app", &layer),
        ]
    );
    assert_eq!(source.reads_of(&layer), 3);
    let retried: Vec<u32> = done
        .events
        .iter()
        .filter_map(|event| match event {
            Event::ImageRetrying { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(retried, [1]);
    assert_eq!(
        destination.manifest_calls(),
        [
            asked("app", "1"),
            asked("app", "1"),
            put_manifest("app", "1", &image.manifest.digest, ManifestRole::Top)
        ]
    );
}

#[tokio::test]
async fn a_cancelled_image_never_gets_its_tag() {
    let (source, _, layer) = one_image(Some(Serve::HangAfter { bytes: 2048 }));
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new());
    let cancel = CancellationToken::new();
    let job = tokio::spawn(run_until(
        source.clone(),
        pieces(&destination),
        options(2),
        &["app:1"],
        cancel.clone(),
    ));
    tokio::time::timeout(Duration::from_secs(5), source.hanging.notified())
        .await
        .expect("the layer's transfer never started");
    cancel.cancel();
    let done = job.await.unwrap();

    assert!(done.report.cancelled);
    assert!(!done.report.all_done());
    assert!(matches!(*failed(&done.report, 0), Error::Cancelled));
    assert_eq!(
        destination.blob_calls(&layer),
        [has("app", &layer), put("app", &layer)]
    );
    assert_eq!(destination.blob("app", &layer), None);
    assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
    assert!(destination.manifest("app", "1").is_none());
}

#[tokio::test]
async fn a_cancel_between_child_manifests_and_the_index_leaves_no_tag() {
    let (source, _, amd64, _) = two_platforms();
    let cancel = CancellationToken::new();
    let destination = Arc::new(MemDest::new().cancelling_after_child(cancel.clone()));
    let done = run_until(
        Arc::new(source),
        pieces(&destination),
        options(2),
        &["app:1"],
        cancel,
    )
    .await;

    assert!(done.report.cancelled);
    assert!(matches!(*failed(&done.report, 0), Error::Cancelled));
    // The first child went in and cancelled the job: neither the second child nor the index.
    assert_eq!(
        destination.manifest_calls(),
        [
            asked("app", "1"),
            put_manifest(
                "app",
                amd64.manifest.digest.as_str(),
                &amd64.manifest.digest,
                ManifestRole::Child
            ),
        ]
    );
    assert!(destination.manifest("app", "1").is_none());
}

fn arm64_only(platform_as_manifest: bool) -> CopyOptions {
    CopyOptions {
        platforms: PlatformFilter::parse_list("linux/arm64").unwrap(),
        platform_as_manifest,
        ..options(0)
    }
}

#[tokio::test]
async fn a_platform_filter_copies_that_platform_under_a_rewritten_index() {
    let (source, index, amd64, arm64) = two_platforms();
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new());
    let done = run(
        source.clone(),
        pieces(&destination),
        arm64_only(false),
        &["app:1"],
    )
    .await;

    assert!(done.report.all_done(), "{:?}", done.report);
    let mut wanted: Vec<Digest> = arm64.blobs.iter().map(|(d, _)| d.clone()).collect();
    wanted.sort();
    assert_eq!(destination.blobs_touched(), wanted, "arm64's blobs only");
    for digest in &wanted {
        assert_eq!(destination.blob_calls(digest), uploaded("app", digest));
    }
    let top = destination.manifest("app", "1").unwrap();
    let (digest, unchanged) = succeeded(&done.report, 0);
    assert!(!unchanged);
    assert_eq!(digest, top.digest);
    assert_eq!(top.digest, Digest::of(&top.bytes));
    assert_ne!(top.digest, index.manifest.digest);
    assert_eq!(top.media_type, manifest::OCI_INDEX);
    let ParsedManifest::Index(kept) = manifest::parse(&top.media_type, &top.bytes, "x").unwrap()
    else {
        panic!("the tag names no index");
    };
    assert_eq!(kept.manifests.len(), 1);
    assert_eq!(kept.manifests[0].digest, arm64.manifest.digest);
    assert_eq!(
        kept.manifests[0].platform.as_ref().unwrap().label(),
        "linux/arm64"
    );
    assert_eq!(
        destination.manifest_calls(),
        [
            asked("app", "1"),
            put_manifest(
                "app",
                arm64.manifest.digest.as_str(),
                &arm64.manifest.digest,
                ManifestRole::Child
            ),
            put_manifest("app", "1", &top.digest, ManifestRole::Top),
        ]
    );
    // amd64's manifest is never even read.
    assert_eq!(
        source.manifest_reads(),
        [
            ("app".to_string(), "1".to_string()),
            ("app".to_string(), arm64.manifest.digest.to_string()),
        ]
    );
    assert!(
        !source
            .manifest_reads()
            .iter()
            .any(|(_, reference)| *reference == amd64.manifest.digest.to_string())
    );
    let filtered: Vec<_> = done
        .events
        .iter()
        .filter_map(|event| match event {
            Event::IndexFiltered {
                original,
                filtered,
                platforms,
                ..
            } => Some((original.clone(), filtered.clone(), platforms.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        filtered,
        [(
            index.manifest.digest.clone(),
            top.digest.clone(),
            vec!["linux/arm64".to_string()]
        )]
    );
}

#[tokio::test]
async fn a_platform_filter_with_platform_as_manifest_tags_the_child_itself() {
    let (source, _, _, arm64) = two_platforms();
    let destination = Arc::new(MemDest::new());
    let done = run(
        Arc::new(source),
        pieces(&destination),
        arm64_only(true),
        &["app:1"],
    )
    .await;

    assert!(done.report.all_done(), "{:?}", done.report);
    assert_eq!(
        succeeded(&done.report, 0),
        (arm64.manifest.digest.clone(), false)
    );
    let mut wanted: Vec<Digest> = arm64.blobs.iter().map(|(d, _)| d.clone()).collect();
    wanted.sort();
    assert_eq!(destination.blobs_touched(), wanted);
    assert_eq!(
        destination.manifest_calls(),
        [
            asked("app", "1"),
            put_manifest("app", "1", &arm64.manifest.digest, ManifestRole::Top),
        ]
    );
    assert_eq!(
        destination.manifest("app", "1").unwrap().bytes,
        arm64.manifest.bytes
    );
    assert!(
        !done
            .events
            .iter()
            .any(|e| matches!(e, Event::IndexFiltered { .. }))
    );
}

#[tokio::test]
async fn a_platform_filter_that_matches_nothing_sends_nothing() {
    let (source, _, _, _) = two_platforms();
    let destination = Arc::new(MemDest::new());
    let options = CopyOptions {
        platforms: PlatformFilter::parse_list("linux/s390x").unwrap(),
        ..options(2)
    };
    let done = run(Arc::new(source), pieces(&destination), options, &["app:1"]).await;

    let error = failed(&done.report, 0);
    assert!(
        matches!(&*error, Error::NoMatchingPlatform { wanted, available, .. }
            if wanted == "linux/s390x" && available == "linux/amd64,linux/arm64"),
        "{error:?}"
    );
    assert_eq!(destination.calls(), []);
}

fn stalling(retries: u32) -> CopyOptions {
    CopyOptions {
        stall_timeout: STALL,
        ..options(retries)
    }
}

#[track_caller]
fn assert_stalled_in_time(done: &Run, side: StallSide, origin: &str, digest: &Digest) {
    let error = failed(&done.report, 0);
    assert!(
        matches!(&*error, Error::Stalled { side: s, origin: o, digest: d, .. }
            if *s == side && o == origin && d == digest),
        "{error:?}"
    );
    // Noticed within a quarter of the timeout after it passed, plus scheduling.
    assert!(
        done.elapsed >= STALL && done.elapsed < STALL * 5 / 2,
        "{:?}",
        done.elapsed
    );
}

#[tokio::test]
async fn a_source_that_stops_mid_blob_stalls_on_the_source_side() {
    let (source, _, layer) = one_image(Some(Serve::HangAfter { bytes: 2048 }));
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new());
    let done = run(
        source.clone(),
        pieces(&destination),
        stalling(0),
        &["app:1"],
    )
    .await;

    assert_stalled_in_time(&done, StallSide::Source, "memory source", &layer);
    assert_eq!(
        destination.blob_calls(&layer),
        [has("app", &layer), put("app", &layer)]
    );
    assert_eq!(destination.blob("app", &layer), None);
    assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
    assert_eq!(source.reads_of(&layer), 1);
}

#[tokio::test]
async fn a_destination_that_never_answers_stalls_on_the_destination_side() {
    let (source, _, layer) = one_image(None);
    let destination = Arc::new(MemDest::new().taking(&layer, Take::NeverAnswer));
    let done = run(
        Arc::new(source),
        pieces(&destination),
        stalling(0),
        &["app:1"],
    )
    .await;

    assert_stalled_in_time(&done, StallSide::Destination, "memory destination", &layer);
    assert_eq!(
        destination.blob_calls(&layer),
        [
            has("app", &layer),
            put("app", &layer),
            Call::Unanswered("app".into(), layer.clone())
        ]
    );
    assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
}

#[tokio::test]
async fn a_slow_source_that_keeps_moving_is_not_stalled() {
    // Seven chunks 60 ms apart: the blob takes longer than the stall timeout, no gap does.
    let image = TestImage::new("linux", "amd64", &[&layer(6, 6500)]);
    let layer = image.layers[0].clone();
    assert_eq!(image.bytes_of(&layer).len().div_ceil(CHUNK), 7);
    let mut source = MemSource::default();
    source.add("app", "1", &image);
    source.serve(
        &layer,
        Serve::Slow {
            delay: Duration::from_millis(60),
        },
    );
    let destination = Arc::new(MemDest::new());
    let done = run(
        Arc::new(source),
        pieces(&destination),
        stalling(0),
        &["app:1"],
    )
    .await;

    assert!(done.report.all_done(), "{:?}", done.report);
    assert!(done.elapsed > STALL, "{:?}", done.elapsed);
    assert_eq!(destination.blob_calls(&layer), uploaded("app", &layer));
}

#[tokio::test]
async fn a_corrupt_blob_never_reaches_the_destination_whole() {
    let (source, image, layer) = one_image(Some(Serve::Corrupt));
    let source = Arc::new(source);
    let destination = Arc::new(MemDest::new());
    let done = run(source.clone(), pieces(&destination), options(0), &["app:1"]).await;

    let error = failed(&done.report, 0);
    assert!(
        matches!(&*error, Error::Registry(registry::Error::DigestMismatch { expected, .. }) if *expected == layer),
        "{error:?}"
    );
    // Every chunk but the last went through; the last was replaced by the error.
    let size = image.bytes_of(&layer).len();
    let before_last = (size - 1) / CHUNK * CHUNK;
    assert_eq!(
        destination.blob_calls(&layer),
        [
            has("app", &layer),
            put("app", &layer),
            Call::BodyBroke {
                repository: "app".into(),
                digest: layer.clone(),
                received: before_last as u64,
            },
        ]
    );
    assert_eq!(destination.blob("app", &layer), None);
    assert_eq!(destination.manifest_calls(), [asked("app", "1")]);
}

/// The entries of a tar archive: name and content, in order.
fn tar_entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        assert_eq!(header.mode().unwrap(), 0o644);
        assert_eq!(header.mtime().unwrap(), 0);
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        entries.push((name, content));
    }
    entries
}

fn blob_entry(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// `app:1`, an image whose first layer comes again as its third.
fn image_repeating_a_layer() -> (MemSource, TestImage) {
    let first = layer(30, 3000);
    let image = TestImage::new("linux", "amd64", &[&first, &layer(31, 700), &first]);
    let mut source = MemSource::default();
    source.add("app", "1", &image);
    (source, image)
}

#[tokio::test]
async fn a_loaded_image_arrives_as_a_docker_save_archive() {
    let (source, image) = image_repeating_a_layer();
    let loader = Arc::new(MemLoader::default());
    let options = CopyOptions {
        loaded_name_host: Some("registry.local:5000".into()),
        ..options(0)
    };
    let done = run(
        Arc::new(source),
        Sink::Whole(loader.clone()),
        options,
        &["app:1 -> team/app:2"],
    )
    .await;

    assert!(done.report.all_done(), "{:?}", done.report);
    let name = "registry.local:5000/team/app:2";
    assert_eq!(done.report.images[0].target, name);
    assert_eq!(
        succeeded(&done.report, 0),
        (image.manifest.digest.clone(), false)
    );
    assert_eq!(
        loader.calls(),
        [
            LoadCall::HasImage(name.into(), image.config.clone()),
            LoadCall::Load(name.into()),
            LoadCall::Loaded(name.into()),
        ]
    );
    let archives = loader.archives();
    let [(loaded_as, archive)] = archives.as_slice() else {
        panic!("{} archives", archives.len());
    };
    assert_eq!(loaded_as, name);
    assert_eq!(archive.len() % 512, 0);
    assert!(archive.ends_with(&[0; 1024]), "two empty blocks end a tar");

    let entries = tar_entries(archive);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    let (config, first, second) = (&image.config, &image.layers[0], &image.layers[1]);
    // Blobs in the order they stream, the repeated layer once, the index last.
    assert_eq!(
        names,
        [
            blob_entry(config).as_str(),
            blob_entry(first).as_str(),
            blob_entry(second).as_str(),
            "manifest.json",
        ]
    );
    for ((_, content), digest) in entries.iter().zip([config, first, second]) {
        assert_eq!(content.as_slice(), image.bytes_of(digest).as_ref());
    }
    let index: serde_json::Value = serde_json::from_slice(&entries[3].1).unwrap();
    assert_eq!(
        index,
        serde_json::json!([{
            "Config": blob_entry(config),
            "RepoTags": [name],
            "Layers": [blob_entry(first), blob_entry(second), blob_entry(first)],
        }])
    );
    assert_eq!(done.report.bytes_transferred, image.size());
}

#[tokio::test]
async fn a_loaded_image_counts_a_repeated_layer_once() {
    let (source, image) = image_repeating_a_layer();
    let loader = Arc::new(MemLoader::default());
    let done = run(
        Arc::new(source),
        Sink::Whole(loader.clone()),
        options(0),
        &["app:1"],
    )
    .await;

    assert!(done.report.all_done(), "{:?}", done.report);
    let streamed: u64 = done
        .events
        .iter()
        .filter_map(|event| match event {
            Event::BlobProgress { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .sum();
    assert_eq!(streamed, image.size());
    // The size the progress bar fills up to is what streams.
    assert_eq!(done.report.images[0].size, image.size());
    assert_eq!(done.report.blobs_transferred, 3);
    let blobs_done = done
        .events
        .iter()
        .filter(|event| matches!(event, Event::BlobDone { .. }))
        .count();
    assert_eq!(blobs_done, 3);
}

#[tokio::test]
async fn a_corrupt_layer_breaks_the_archive_before_its_tags() {
    let (mut source, image) = image_repeating_a_layer();
    let second = image.layers[1].clone();
    source.serve(&second, Serve::Corrupt);
    let loader = Arc::new(MemLoader::default());
    let done = run(
        Arc::new(source),
        Sink::Whole(loader.clone()),
        options(0),
        &["app:1"],
    )
    .await;

    let error = failed(&done.report, 0);
    assert!(
        matches!(&*error, Error::Registry(registry::Error::DigestMismatch { expected, .. }) if *expected == second),
        "the content's error, not the engine's view of a short archive: {error:?}"
    );
    let archives = loader.archives();
    let [(_, archive)] = archives.as_slice() else {
        panic!("{} archives", archives.len());
    };
    assert_eq!(
        loader.calls(),
        [
            LoadCall::HasImage("app:1".into(), image.config.clone()),
            LoadCall::Load("app:1".into()),
            LoadCall::Broke {
                name: "app:1".into(),
                received: archive.len(),
            },
        ]
    );
    // manifest.json, which names the tag, comes last: it never arrived.
    let text = String::from_utf8_lossy(archive);
    assert!(!text.contains("manifest.json"));
    assert!(!text.contains("RepoTags"));
}

#[tokio::test]
async fn an_engine_that_has_the_image_gets_no_archive() {
    let (source, image) = image_repeating_a_layer();
    let source = Arc::new(source);
    let loader = Arc::new(MemLoader::default().holding("app:1", &image.config));
    let done = run(
        source.clone(),
        Sink::Whole(loader.clone()),
        options(0),
        &["app:1"],
    )
    .await;

    assert_eq!(
        succeeded(&done.report, 0),
        (image.manifest.digest.clone(), true)
    );
    assert_eq!(
        loader.calls(),
        [LoadCall::HasImage("app:1".into(), image.config.clone())]
    );
    for (digest, _) in &image.blobs {
        assert_eq!(source.reads_of(digest), 0);
    }
}

#[tokio::test]
async fn loading_an_index_takes_the_platform_selected() {
    let (source, _, amd64, arm64) = two_platforms();
    let source = Arc::new(source);
    let loader = Arc::new(MemLoader::default());
    let done = run(
        source.clone(),
        Sink::Whole(loader.clone()),
        arm64_only(false),
        &["app:1"],
    )
    .await;

    assert_eq!(
        succeeded(&done.report, 0),
        (arm64.manifest.digest.clone(), false)
    );
    let archives = loader.archives();
    let entries = tar_entries(&archives[0].1);
    let names: Vec<String> = entries.into_iter().map(|(name, _)| name).collect();
    let mut expected: Vec<String> = arm64.blobs.iter().map(|(d, _)| blob_entry(d)).collect();
    expected.push("manifest.json".into());
    assert_eq!(names, expected);
    for (digest, _) in &amd64.blobs {
        if !arm64.layers.contains(digest) {
            assert_eq!(source.reads_of(digest), 0);
        }
    }
}
