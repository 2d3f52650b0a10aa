//! The web UI in a real headless Chromium, against real registries: each button as a person
//! who has never used Docker would press it. Screenshots of the main screens go to the folder
//! `IMAGE_TRANSMIT_SCREENSHOTS` names (docs/ when refreshing them), else to a scratch folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{Browser, Layer, TestRegistry, push_docker_image, push_oci_image};

use crate::common::{
    Daemon, address_and_token, raw_request, served_digest, trickling_source, workdir, write,
};

const JOB: Duration = Duration::from_secs(60);

/// `image-transmit ui` in `dir`, and the address with the token it printed.
fn start_ui(dir: &Path) -> (Daemon, String) {
    let ui = Daemon::start(dir, &["ui", "--no-open"]);
    let url = ui.ui_address();
    (ui, url)
}

fn screenshots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("IMAGE_TRANSMIT_SCREENSHOTS") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let scratch = workdir();
            (scratch.path().to_path_buf(), Some(scratch))
        }
    }
}

fn summary_says(count: &str) -> impl Fn(&str) -> bool + '_ {
    move |text: &str| text.contains(count)
}

#[test]
fn each_button_works_in_a_real_browser() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let second = TestRegistry::start();
    let app = push_oci_image(&source, "team/app", "1", &[Layer::random(91_001, 20_000)]);
    let web = push_docker_image(&source, "team/web", "2", &[Layer::random(91_002, 9_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\ntarget:\n- name: gz\n  registry: {}\n",
            source.url(),
            target.url()
        ),
    );
    let (_ui, url) = start_ui(dir.path());
    let (shots, _scratch) = screenshots();
    let browser = Browser::start();
    browser.goto(&url);
    browser.wait_for_text("#source", Duration::from_secs(20), |text| {
        text.contains("nj")
    });
    browser.wait_for_text("#btn-transmit", Duration::from_secs(5), |text| {
        text == "Transmit"
    });

    // Verify: the mapping, and which source images exist.
    browser.type_into("#list", "team/app:1\nteam/web:2\nteam/missing:1\n");
    browser.click("#btn-verify");
    browser.wait_for_text("#result", JOB, |text| {
        text.contains("not found on the source")
    });
    let mapping = browser.text("#verify");
    assert!(
        mapping.contains(&format!("{}/team/app:1", source.host())),
        "{mapping}"
    );
    assert!(
        mapping.contains(&format!("{}/team/app:1", target.host())),
        "{mapping}"
    );
    assert_eq!(mapping.matches("yes").count(), 2, "{mapping}");
    browser.screenshot(&shots.join("ui-verify.png"));

    // Transmit: two images copied, the missing one reported invalid.
    browser.click("#btn-transmit");
    browser.wait_for_text("#summary", JOB, summary_says("2 succeeded"));
    assert!(browser.text("#summary").contains("1 invalid"));
    assert!(browser.text("#result").contains("team/missing"));
    assert!(
        browser.text("#status").contains("OK:2"),
        "{}",
        browser.text("#status")
    );
    assert_eq!(
        served_digest(&target, "team/app", "1"),
        Some(app.digest.clone())
    );
    assert_eq!(
        served_digest(&target, "team/web", "2"),
        Some(web.digest.clone())
    );
    browser.screenshot(&shots.join("ui-transmit.png"));

    // Save a bundle, then upload it to a registry added on the page.
    browser.type_into("#list", "team/app:1\nteam/web:2\n");
    browser.click("#btn-save");
    browser.wait_for_text("#summary", JOB, summary_says("2 succeeded"));
    browser.wait_for_text("#upload-meta", Duration::from_secs(10), |text| {
        text.contains("_meta.yaml")
    });
    browser.click("#btn-add-registry");
    browser.choose("#reg-side", "target");
    browser.type_into("#reg-name", "customer");
    browser.type_into("#reg-address", &second.url());
    browser.click("#reg-add");
    browser.wait_for_text("#target", Duration::from_secs(10), |text| {
        text.contains("customer")
    });
    browser.choose("#target", "customer");
    browser.type_into("#list", "");
    browser.click("#btn-upload");
    browser.wait_for_text("#summary", JOB, summary_says("2 succeeded"));
    assert_eq!(served_digest(&second, "team/app", "1"), Some(app.digest));
    // The job's copy of the configuration (with the added registry) is gone; its report stays.
    let left: Vec<String> = std::fs::read_dir(dir.path().join("data/ui"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|name| name.ends_with(".json")), "{left:?}");
    assert_eq!(served_digest(&second, "team/web", "2"), Some(web.digest));

    // A bundle picked with the file dialog (as from a USB stick) is copied in and offered.
    let carried = workdir();
    let saved_meta = dir
        .path()
        .join(browser.text("#upload-meta").lines().next().unwrap().trim());
    let mut files = vec![carried.path().join(saved_meta.file_name().unwrap())];
    std::fs::copy(&saved_meta, &files[0]).unwrap();
    for entry in std::fs::read_dir(saved_meta.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tar") {
            let copy = carried.path().join(path.file_name().unwrap());
            std::fs::copy(&path, &copy).unwrap();
            files.push(copy);
        }
    }
    let picked: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    browser.choose_files("#bundle-files", &picked);
    browser.wait_for_text("#upload-meta", Duration::from_secs(20), |text| {
        text.contains("data/uploads/")
    });
    let offered = browser
        .run(
            "return document.getElementById('upload-meta').value",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    assert!(offered.starts_with("data/uploads/"), "{offered}");
    assert!(dir.path().join(&offered).is_file());

    // An incremental save on the bundle just made: only what that bundle lacks.
    browser.choose("#archive-mode", "incr");
    browser.choose("#base-meta", &offered);
    browser.type_into("#list", "team/app:1\nteam/web:2\n");
    browser.click("#btn-save");
    browser.wait_for_text("#summary", JOB, summary_says("2 succeeded"));
    browser.wait_for_text("#upload-meta", Duration::from_secs(10), |text| {
        text.contains("img_incr_")
    });
    browser.choose("#archive-mode", "full");

    // Bundle browsing and the job history.
    let meta = browser.text("#upload-meta");
    let meta = meta.lines().next().unwrap().trim().to_string();
    browser.choose("#bundle-meta", &meta);
    browser.wait_for_text("#bundle-view", Duration::from_secs(10), |text| {
        text.contains("team/web:2")
    });
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#history li').length",
            serde_json::json!([])
        ),
        serde_json::json!(4)
    );

    // Watch runs until Stop; Stop ends it cleanly.
    browser.choose("#target", "gz");
    browser.type_into("#list", "team/app\n");
    browser.click("#btn-watch");
    browser.wait_for_text("#log", JOB, |text| text.contains("Cycle 1:"));
    browser.click("#btn-stop");
    browser.wait_for_text("#log", JOB, |text| text.contains("finished, exit status 0"));
    assert!(browser.text("#log").contains("Watch stopped"));

    // The same page in Chinese.
    browser.choose("#lang", "zh-CN");
    browser.wait_for_text("#btn-transmit", Duration::from_secs(10), |text| {
        text == "直传"
    });
    assert_eq!(browser.text("#btn-upload"), "上传");
    browser.screenshot(&shots.join("ui-zh.png"));
}

#[test]
fn requests_without_the_token_are_refused() {
    let dir = workdir();
    let (_ui, url) = start_ui(dir.path());
    let (address, token) = address_and_token(&url);
    for path in ["/", "/api/state", "/api/jobs/1/events", "/?token=wrong"] {
        let reply = raw_request(&address, "GET", path, "", "");
        assert!(reply.starts_with("HTTP/1.1 401"), "{path}: {reply}");
    }
    // Files picked in the page land in data/uploads/, nowhere else.
    for name in ["%2E%2E%2Fcfg.yaml", "..", "a%2Fb"] {
        let path = format!("/api/uploads/1/{name}");
        let reply = raw_request(
            &address,
            "PUT",
            &path,
            &format!("x-token: {token}\r\n"),
            "hi",
        );
        assert!(reply.starts_with("HTTP/1.1 400"), "{name}: {reply}");
    }
    assert!(!dir.path().join("data/cfg.yaml").exists());

    // Only loopback: other machines must not reach it at all.
    let refused = crate::common::image_transmit(dir.path())
        .args(["ui", "--no-open", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}

#[test]
fn stop_ends_a_running_transmit_cleanly_and_passwords_never_reach_the_page() {
    let (_source, proxy, _slow) = trickling_source(92_001);
    let target = TestRegistry::start();
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\ntarget:\n- name: gz\n  registry: {}\n  user: deployer\n  password: cfg-secret-1\n",
            proxy.url(),
            target.url()
        ),
    );
    let (_ui, url) = start_ui(dir.path());
    let browser = Browser::start();
    browser.goto(&url);
    browser.wait_for_text("#source", Duration::from_secs(20), |text| {
        text.contains("nj")
    });

    // A registry added with a password: the page gets its name back, never the password.
    browser.click("#btn-add-registry");
    browser.type_into("#reg-name", "extra");
    browser.type_into("#reg-address", &target.url());
    browser.type_into("#reg-user", "someone");
    browser.type_into("#reg-password", "page-secret-2");
    browser.click("#reg-add");
    browser.wait_for_text("#source", Duration::from_secs(10), |text| {
        text.contains("extra")
    });
    let state = browser.run(
        "return fetch('/api/state', {headers: {'x-token': arguments[0]}}).then(r => r.text())",
        serde_json::json!([address_and_token(&url).1]),
    );
    let state = state.as_str().unwrap();
    assert!(state.contains("extra"), "{state}");
    for secret in ["cfg-secret-1", "page-secret-2", "deployer", "someone"] {
        assert!(
            !state.contains(secret),
            "{secret} reached the page: {state}"
        );
    }
    assert!(
        !browser
            .run(
                "return document.documentElement.outerHTML",
                serde_json::json!([])
            )
            .as_str()
            .unwrap()
            .contains("cfg-secret-1")
    );

    // Stop while the big layer trickles in: the job ends, the tag is not pushed.
    browser.choose("#source", "nj");
    browser.type_into("#list", "team/big:1\n");
    browser.click("#btn-transmit");
    browser.wait_for_text("#status", JOB, |text| text.contains("Doing:1"));
    browser.click("#btn-stop");
    browser.wait_for_text("#log", JOB, |text| text.contains("finished, exit status"));
    assert!(
        browser.text("#log").contains("finished, exit status 1"),
        "{}",
        browser.text("#log")
    );
    assert_eq!(served_digest(&target, "team/big", "1"), None);
    assert!(!browser.text("#btn-transmit").is_empty());
    assert_eq!(
        browser.run(
            "return document.getElementById('btn-transmit').disabled",
            serde_json::json!([])
        ),
        serde_json::json!(false)
    );
}

#[test]
fn past_jobs_are_listed_again_after_a_restart() {
    let dir = workdir();
    std::fs::create_dir_all(dir.path().join("data/ui")).unwrap();
    write(
        dir.path(),
        "data/ui/job-1-100.json",
        r#"{"command":"copy","source":"a","target":"b","summary":{"total":2,"succeeded":1,"failed":1,"invalid":0,"cancelled":false},"images":[],"invalid":[]}"#,
    );
    let (_ui, url) = start_ui(dir.path());
    let (address, token) = address_and_token(&url);
    let get = |path: &str| raw_request(&address, "GET", path, &format!("x-token: {token}\r\n"), "");
    let state = get("/api/state");
    assert!(state.contains(r#""mode":"transmit""#), "{state}");
    assert!(state.contains(r#""exit":1"#), "{state}");
    let job = get("/api/jobs/1");
    assert!(job.starts_with("HTTP/1.1 200"), "{job}");
    assert!(job.contains(r#""succeeded":1"#), "{job}");
}
