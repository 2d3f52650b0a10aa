//! The web UI in a real headless Chromium, against real registries and Podman's Docker API: each
//! task as a person who has never used Docker would do it, in both languages. Controls are found
//! by their `data-testid` (docs/ui.md lists them). Screenshots of every screen go to the folder
//! `IMAGE_TRANSMIT_SCREENSHOTS` names (docs/ when refreshing them), else to a scratch folder.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

#[cfg(unix)]
use testkit::TestPodman;
use testkit::{Browser, Layer, TestRegistry, push_docker_image, push_oci_image};

use crate::bundle_support::save;
use crate::common::{
    Daemon, address_and_token, raw_request, served_digest, trickling_source, workdir, write,
};

const JOB: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

/// `[data-testid="ID"]`.
fn id(name: &str) -> String {
    format!("[data-testid=\"{name}\"]")
}

/// `image-transmit ui` in `dir` (with `environment` added), and the address with its token.
fn start_ui(dir: &Path, environment: &[(&str, String)]) -> (Daemon, String) {
    let mut command = Process::new(assert_cmd::cargo::cargo_bin("image-transmit"));
    command
        .current_dir(dir)
        .env("LANG", "en_US.UTF-8")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(["ui", "--no-open"]);
    for (name, value) in environment {
        command.env(name, value);
    }
    let ui = Daemon::spawn(command);
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

/// The page in `language`, opened on its first screen.
fn open_page(url: &str, language: &str) -> Browser {
    let browser = Browser::start();
    browser.goto(url);
    browser.wait_for_text(&id("task-transmit"), SHORT, |text| !text.is_empty());
    browser.choose(&id("language"), language);
    let expected = if language == "en" { "Copy" } else { "直传" };
    browser.wait_for_text(&id("task-transmit"), SHORT, |text| text == expected);
    browser
}

fn task(browser: &Browser, name: &str) {
    browser.click(&id(&format!("task-{name}")));
    browser.wait_for_text(&id(&format!("screen-{name}")), SHORT, |text| {
        !text.is_empty()
    });
}

/// Waits for the summary of the job just started (the panel is hidden from the moment a job
/// is asked for until it shows that job) and returns it.
#[track_caller]
fn summary(browser: &Browser) -> String {
    let started = std::time::Instant::now();
    loop {
        let shown = browser.run(
            "const e = document.querySelector(arguments[0]); \
             return e && e.offsetParent !== null ? e.innerText : '';",
            serde_json::json!([id("job-summary")]),
        );
        let text = shown.as_str().unwrap_or_default();
        if !text.is_empty() {
            return text.to_string();
        }
        assert!(
            started.elapsed() < JOB,
            "no summary; the page shows {}",
            browser.text("main")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens `folder` (a name in the listed folder) in the import screen's folder browser, then
/// picks the package file there.
fn pick_bundle(browser: &Browser, folder: &str, meta_name: &str) {
    let folder_entry = format!("{}[data-name=\"{folder}\"] button", id("browser-entry"));
    browser.wait_for_text(&id("browser"), SHORT, |text| text.contains(folder));
    browser.click(&folder_entry);
    browser.wait_for_text(&id("browser"), SHORT, |text| text.contains(meta_name));
    browser.click(&format!(
        "{}[data-name=\"{meta_name}\"] button",
        id("browser-entry")
    ));
    browser.wait_for_text(&id("import-summary"), SHORT, |text| {
        text.contains(meta_name)
    });
}

/// Moves a saved bundle (its meta and the data files named like it) into `dir/folder`, as if
/// carried there on a USB stick; the meta's new path.
fn carry(meta: &Path, dir: &Path, folder: &str) -> PathBuf {
    let into = dir.join(folder);
    fs_err::create_dir_all(&into).unwrap();
    let name = file_name(meta);
    let prefix = name.strip_suffix("_meta.yaml").unwrap();
    for entry in fs_err::read_dir(meta.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && file_name(&path).starts_with(prefix) {
            fs_err::rename(&path, into.join(path.file_name().unwrap())).unwrap();
        }
    }
    into.join(name)
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// cfg.yaml with the source `nj` and the target `gz` at these addresses.
fn config(source: &str, target: &str) -> String {
    format!(
        "source:\n- name: nj\n  registry: {source}\ntarget:\n- name: gz\n  registry: {target}\n"
    )
}

/// Scrolls the element with `testid` into view, for a screenshot that shows it.
fn show(browser: &Browser, testid: &str) {
    browser.run(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
        serde_json::json!([id(testid)]),
    );
}

fn is_disabled(browser: &Browser, name: &str) -> bool {
    browser.run(
        "return document.querySelector(arguments[0]).disabled",
        serde_json::json!([id(name)]),
    ) == serde_json::json!(true)
}

fn count(browser: &Browser, selector: &str) -> usize {
    browser
        .run(
            "return document.querySelectorAll(arguments[0]).length",
            serde_json::json!([selector]),
        )
        .as_u64()
        .unwrap() as usize
}

/// The delivery the issue is about: after an unrelated transmit (another list, a rename), an
/// upload of a package picked with the folder browser from a folder whose name has a space and
/// Chinese characters delivers exactly the package's images, under the names shown before.
#[test]
fn import_delivers_exactly_the_package_picked_in_the_folder_browser() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let app = push_oci_image(&source, "team/app", "1", &[Layer::random(93_001, 20_000)]);
    let web = push_docker_image(&source, "team/web", "2", &[Layer::random(93_002, 9_000)]);
    push_oci_image(&source, "team/db", "3", &[Layer::random(93_003, 5_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &config(&source.url(), &target.url()),
    );
    write(dir.path(), "package.txt", "team/app:1\nteam/web:2\n");
    let (_, meta) = save(dir.path(), "nj", &["--list", "package.txt"]);
    let meta = carry(&meta, dir.path(), "U 盘");

    let (_ui, url) = start_ui(dir.path(), &[]);
    let (shots, _scratch) = screenshots();
    let browser = open_page(&url, "en");

    // An unrelated transmit, with a rename, in the copy screen.
    task(&browser, "transmit");
    browser.type_into(
        &id("transmit-list"),
        "team/db:3\nteam/app:1 -> renamed/app:1\n",
    );
    browser.click(&id("transmit-verify"));
    browser.wait_for_text(&id("transmit-check"), JOB, |text| {
        text.contains("All 2 images are on the source")
    });
    browser.click(&id("transmit-start"));
    let said = summary(&browser);
    assert!(said.contains("all 2 images are in"), "{said}");
    assert_eq!(count(&browser, &id("image-row")), 2);
    show(&browser, "job");
    browser.screenshot(&shots.join("ui-transmit-en.png"));

    // Import: the package is found where it lies, described, checked and planned.
    task(&browser, "import");
    pick_bundle(&browser, "U 盘", &file_name(&meta));
    let described = browser.text(&id("import-summary"));
    assert!(described.contains("holds 2 images"), "{described}");
    assert!(described.contains("full package"), "{described}");
    assert_eq!(count(&browser, &id("import-image")), 2);
    browser.click(&id("import-verify"));
    browser.wait_for_text(&id("import-verify-result"), JOB, |text| {
        text.contains("complete and undamaged")
    });
    browser.wait_for_text(&id("import-plan"), JOB, |text| {
        text.contains("creates these 2 images")
    });
    let plan = browser.text(&id("import-plan"));
    for name in ["team/app:1", "team/web:2"] {
        assert!(
            plan.contains(&format!("{}/{name}", target.host())),
            "{plan}"
        );
    }
    assert!(
        !plan.contains("renamed") && !plan.contains("team/db"),
        "{plan}"
    );
    show(&browser, "import-plan");
    browser.screenshot(&shots.join("ui-import-en.png"));
    browser.click(&id("import-start"));
    let said = summary(&browser);
    assert!(said.contains("all 2 images are in"), "{said}");
    assert_eq!(served_digest(&target, "team/app", "1"), Some(app.digest));
    assert_eq!(served_digest(&target, "team/web", "2"), Some(web.digest));
    // The transmit's rename was not applied to the upload, nor its list used.
    let report_link = browser.run(
        "return document.querySelector(arguments[0]).href",
        serde_json::json!([id("job-report")]),
    );
    let (address, token) = address_and_token(&url);
    let path = report_link
        .as_str()
        .unwrap()
        .split(&address)
        .nth(1)
        .unwrap();
    let report = raw_request(&address, "GET", path, &format!("x-token: {token}\r\n"), "");
    assert!(report.contains(r#""command": "upload""#), "{report}");
    assert_eq!(
        report.matches(r#""status": "copied""#).count(),
        2,
        "{report}"
    );
    assert!(!report.contains("renamed"), "{report}");

    // A package made, then watching until Stop: the other two tasks, in English.
    task(&browser, "save");
    browser.type_into(&id("save-list"), "team/web:2\n");
    browser.click(&id("save-single-file"));
    browser.click(&id("save-start"));
    let said = summary(&browser);
    assert!(said.contains("the package is ready, 1 images"), "{said}");
    assert!(said.contains("_meta.yaml"), "{said}");
    task(&browser, "watch");
    browser.type_into(&id("watch-list"), "team/db\n");
    browser.click(&id("watch-start"));
    browser.wait_for_text(&id("job-title"), JOB, |text| text.contains("in progress"));
    browser.click(&id("job-details"));
    browser.wait_for_text(&id("job-log"), JOB, |text| text.contains("Cycle 1:"));
    browser.click(&id("job-stop"));
    let said = summary(&browser);
    assert!(said.contains("Watching has stopped"), "{said}");

    // Every screen, for the documentation.
    for screen in ["save", "watch", "history", "settings"] {
        task(&browser, screen);
        browser.screenshot(&shots.join(format!("ui-{screen}-en.png")));
    }
    // The page fits a 1280×800 screen and a narrow window without sideways scrolling.
    for (width, height) in [(1280, 800), (420, 800)] {
        browser.resize(width, height);
        for screen in ["transmit", "import", "settings"] {
            task(&browser, screen);
            let overflow = browser.run(
                "return document.documentElement.scrollWidth - window.innerWidth",
                serde_json::json!([]),
            );
            assert!(
                overflow.as_i64().unwrap() <= 0,
                "{screen} at {width}px overflows by {overflow}"
            );
        }
    }
}

/// What must stop a delivery before anything is pushed, in Chinese: a data file missing from
/// the package (named), and an increment whose base the target lacks (the base's file named).
#[test]
fn a_package_that_cannot_be_delivered_is_explained_before_anything_is_pushed() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(94_001, 20_000)]);
    push_oci_image(
        &source,
        "team/app",
        "2",
        &[Layer::random(94_001, 20_000), Layer::random(94_002, 7_000)],
    );
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &config(&source.url(), &target.url()),
    );
    let (_, base) = save(dir.path(), "nj", &["team/app:1"]);
    let (_, increment) = save(
        dir.path(),
        "nj",
        &["--incremental-from", base.to_str().unwrap(), "team/app:2"],
    );
    let (_, broken) = save(dir.path(), "nj", &["team/app:2"]);
    let broken = carry(&broken, dir.path(), "坏的 包");
    let missing_file = fs_err::read_dir(broken.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    fs_err::remove_file(&missing_file).unwrap();
    let increment = carry(&increment, dir.path(), "增量");

    let (_ui, url) = start_ui(dir.path(), &[]);
    let (shots, _scratch) = screenshots();
    let browser = open_page(&url, "zh-CN");
    task(&browser, "import");

    pick_bundle(&browser, "坏的 包", &file_name(&broken));
    let problems = browser.text(&id("import-problems"));
    assert!(problems.contains(&file_name(&missing_file)), "{problems}");
    assert!(problems.contains("缺少数据文件"), "{problems}");
    assert!(is_disabled(&browser, "import-start"));
    show(&browser, "import-problems");
    browser.screenshot(&shots.join("ui-import-damaged-zh.png"));

    // The increment's folder typed in, as a network share would be.
    let increment_name = file_name(&increment);
    browser.type_into(
        &id("browser-go-path"),
        increment.parent().unwrap().to_str().unwrap(),
    );
    browser.click(&id("browser-go-open"));
    browser.wait_for_text(&id("browser-path"), SHORT, |text| text.ends_with("增量"));
    browser.click(&format!(
        "{}[data-name=\"{increment_name}\"] button",
        id("browser-entry")
    ));
    browser.wait_for_text(&id("import-summary"), SHORT, |text| {
        text.contains(&increment_name)
    });
    let described = browser.text(&id("import-summary"));
    assert!(described.contains("增量包"), "{described}");
    assert!(described.contains(&file_name(&base)), "{described}");
    browser.wait_for_text(&id("import-plan"), JOB, |text| {
        text.contains(&file_name(&base))
    });
    let refusal = browser.text(&id("import-refusal"));
    assert!(refusal.contains(&target.host()), "{refusal}");
    assert!(is_disabled(&browser, "import-start"));
    show(&browser, "import-refusal");
    browser.screenshot(&shots.join("ui-import-increment-zh.png"));
    // Nothing reached the target.
    assert_eq!(served_digest(&target, "team/app", "2"), None);
    assert_eq!(served_digest(&target, "team/app", "1"), None);
}

/// A first start without cfg.yaml leads to the settings; a registry added there and kept is
/// written into a new cfg.yaml readable by its owner only, tested in plain words, and there
/// after a restart. A password typed into the page never comes back to it, and one held for
/// this run only is never written to disk, not even while a job uses it.
#[test]
fn a_kept_registry_survives_a_restart_and_passwords_stay_off_the_page_and_the_disk() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(95_001, 9_000)]);
    let dir = workdir();
    let (ui, url) = start_ui(dir.path(), &[]);
    let browser = open_page(&url, "en");
    browser.wait_for_text(&id("welcome"), SHORT, |text| text.contains("No registries"));

    browser.click(&id("reg-side-target"));
    browser.type_into(&id("reg-name"), "customer");
    browser.type_into(&id("reg-address"), &target.url());
    browser.type_into(&id("reg-user"), "deployer");
    browser.type_into(&id("reg-password"), "kept-secret-1");
    browser.click(&id("reg-test"));
    browser.wait_for_text(&id("reg-result"), SHORT, |text| text.contains("answers"));
    browser.click(&id("reg-add"));
    browser.wait_for_text(&id("reg-result"), SHORT, |text| text.contains("kept in"));
    let kept = fs_err::read_to_string(dir.path().join("cfg.yaml")).unwrap();
    assert!(kept.contains("name: \"customer\""), "{kept}");
    assert!(kept.contains("kept-secret-1"), "{kept}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(dir.path().join("cfg.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A source held for this run only, with a password.
    browser.click(&id("reg-side-source"));
    browser.type_into(&id("reg-name"), "vendor");
    browser.type_into(&id("reg-address"), &source.url());
    browser.type_into(&id("reg-user"), "reader");
    browser.type_into(&id("reg-password"), "session-secret-2");
    browser.click(&id("reg-keep"));
    browser.click(&id("reg-add"));
    browser.wait_for_text(&id("reg-result"), SHORT, |text| {
        text.contains("until the program closes")
    });
    browser.wait_for_text(&id("registries"), SHORT, |text| text.contains("vendor"));
    browser.click(&format!(
        "{}[data-name=\"customer\"] button",
        id("registry-row")
    ));
    browser.wait_for_text(&id("registries"), SHORT, |text| {
        text.contains("accepts this login")
    });
    let (address, token) = address_and_token(&url);
    let state = raw_request(
        &address,
        "GET",
        "/api/state",
        &format!("x-token: {token}\r\n"),
        "",
    );
    let page = browser
        .run(
            "return document.documentElement.outerHTML",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    for secret in ["kept-secret-1", "session-secret-2"] {
        assert!(
            !state.contains(secret),
            "{secret} reached the page: {state}"
        );
        assert!(!page.contains(secret), "{secret} is in the page");
    }

    // A transmit with the session source: its password is on no disk, during or after.
    task(&browser, "transmit");
    browser.choose(&id("transmit-source"), "vendor");
    browser.type_into(&id("transmit-list"), "team/app:1\n");
    browser.click(&id("transmit-start"));
    let said = summary(&browser);
    assert!(said.contains("all 1 images are in"), "{said}");
    assert!(served_digest(&target, "team/app", "1").is_some());
    for entry in walk(dir.path()) {
        let bytes = fs_err::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("session-secret-2"),
            "the session password is in {}",
            entry.display()
        );
    }

    // After a restart the kept registry is there, the session one is not.
    let (code, _) = ui.terminate();
    assert_eq!(code, Some(0));
    let (_ui, url) = start_ui(dir.path(), &[]);
    let browser = open_page(&url, "en");
    task(&browser, "settings");
    browser.wait_for_text(&id("registries"), SHORT, |text| text.contains("customer"));
    assert!(!browser.text(&id("registries")).contains("vendor"));
    assert_eq!(
        browser.run(
            "return document.querySelector(arguments[0]).hidden",
            serde_json::json!([id("welcome")])
        ),
        serde_json::json!(true)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Import into the local Docker: Podman's Docker-compatible service, from the page.
#[cfg(unix)]
#[test]
fn a_package_loads_into_the_docker_api_from_the_page() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_docker_image(&source, "team/app", "1", &[Layer::random(96_001, 30_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &config(&source.url(), &target.url()),
    );
    let (_, meta) = save(dir.path(), "nj", &["team/app:1"]);
    let meta = carry(&meta, dir.path(), "usb");
    let podman = TestPodman::start();
    let (_ui, url) = start_ui(dir.path(), &[("DOCKER_HOST", podman.docker_host())]);
    let browser = open_page(&url, "en");
    task(&browser, "import");
    pick_bundle(&browser, "usb", &file_name(&meta));
    browser.click(&id("import-to-docker"));
    browser.wait_for_text(&id("import-start"), SHORT, |text| text == "Load");
    browser.click(&id("import-start"));
    let said = summary(&browser);
    assert!(said.contains("all 1 images are in the local"), "{said}");
    assert!(
        podman
            .image_id(&format!("{}/team/app:1", source.host()))
            .is_some(),
        "{:?}",
        podman.tags()
    );
}

/// Stop while a layer trickles in: the job ends cleanly, the summary says what happened in
/// plain words, and nothing half-copied is tagged on the target.
#[test]
fn stop_ends_a_running_transmit_cleanly() {
    let (_source, proxy, _slow) = trickling_source(92_001);
    let target = TestRegistry::start();
    let dir = workdir();
    write(dir.path(), "cfg.yaml", &config(&proxy.url(), &target.url()));
    let (_ui, url) = start_ui(dir.path(), &[]);
    let browser = open_page(&url, "en");
    task(&browser, "transmit");
    browser.type_into(&id("transmit-list"), "team/big:1\n");
    browser.click(&id("transmit-start"));
    browser.wait_for_text(&id("job-images"), JOB, |text| text.contains(" of "));
    browser.click(&id("job-stop"));
    let said = summary(&browser);
    assert!(said.contains("Stopped. 0 of 1 images"), "{said}");
    assert_eq!(served_digest(&target, "team/big", "1"), None);
    assert!(!is_disabled(&browser, "transmit-start"));
    // The report of what was done before the stop can be kept.
    assert!(!browser.text(&id("job-report")).is_empty());
}

/// An image that fails is named with its reason; "Retry the failed ones" runs just that image
/// again with the same registries, leaving the list box as the person typed it.
#[test]
fn retry_the_failed_ones_runs_only_the_failed_images_again() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let broken = Layer::random(98_001, 40_000);
    push_oci_image(&source, "team/app", "1", std::slice::from_ref(&broken));
    push_oci_image(&source, "team/web", "2", &[Layer::random(98_002, 9_000)]);
    let proxy = testkit::proxy::FaultProxy::start(&source);
    proxy.add(testkit::proxy::Rule::corrupt_body("GET", broken.digest()));
    let dir = workdir();
    write(dir.path(), "cfg.yaml", &config(&proxy.url(), &target.url()));
    let (_ui, url) = start_ui(dir.path(), &[]);
    let browser = open_page(&url, "en");
    task(&browser, "settings");
    browser.type_into(&id("retries"), "0");
    task(&browser, "transmit");
    browser.type_into(&id("transmit-list"), "team/app:1\nteam/web:2\n");
    browser.click(&id("transmit-start"));
    let said = summary(&browser);
    assert!(said.contains("1 of 2 images succeeded"), "{said}");
    assert!(said.contains("team/app:1"), "{said}");
    assert_eq!(
        count(
            &browser,
            &format!("{}[data-state=\"failed\"]", id("image-row"))
        ),
        1
    );
    assert_eq!(served_digest(&target, "team/app", "1"), None);

    proxy.clear_rules();
    browser.click(&id("job-retry"));
    let said = summary(&browser);
    assert!(said.contains("all 1 images are in"), "{said}");
    assert!(served_digest(&target, "team/app", "1").is_some());
    // The list box still holds what the person typed.
    assert_eq!(
        browser.run(
            "return document.querySelector(arguments[0]).value",
            serde_json::json!([id("transmit-list")])
        ),
        serde_json::json!("team/app:1\nteam/web:2\n")
    );
}

/// Every word on a Chinese page is Chinese after a transmit, a save, an upload and a watch,
/// the job's own log included; names of images, hosts, files and units excepted.
#[test]
fn a_chinese_page_speaks_only_chinese_through_every_task() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let second = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(97_001, 12_000)]);
    push_docker_image(&source, "team/web", "2", &[Layer::random(97_002, 8_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "{}- name: customer\n  registry: {}\n",
            config(&source.url(), &target.url()),
            second.url()
        ),
    );
    let (_ui, url) = start_ui(dir.path(), &[]);
    let (shots, _scratch) = screenshots();
    let browser = open_page(&url, "zh-CN");

    task(&browser, "transmit");
    browser.type_into(
        &id("transmit-list"),
        "team/app:1\nteam/web:2\nteam/gone:9\n",
    );
    browser.click(&id("transmit-verify"));
    browser.wait_for_text(&id("transmit-check"), JOB, |text| text.contains("无法传输"));
    assert_chinese(&browser, "verify");
    browser.click(&id("transmit-start"));
    let said = summary(&browser);
    assert!(said.contains("没有全部完成"), "{said}");
    assert_chinese(&browser, "transmit");
    browser.screenshot(&shots.join("ui-transmit-zh.png"));

    task(&browser, "save");
    browser.type_into(&id("save-list"), "team/app:1\nteam/web:2\n");
    browser.click(&id("save-start"));
    let said = summary(&browser);
    assert!(said.contains("离线包已生成"), "{said}");
    assert_chinese(&browser, "save");
    show(&browser, "job-summary");
    browser.screenshot(&shots.join("ui-save-zh.png"));

    task(&browser, "import");
    browser.wait_for_text(&id("browser"), SHORT, |text| text.contains("data"));
    browser.click(&format!(
        "{}[data-name=\"data\"] button",
        id("browser-entry")
    ));
    // The save's dated folder.
    browser.wait_for_text(&id("browser"), SHORT, |text| text.contains("ui"));
    browser.click(&format!(
        "{}[data-kind=\"folder\"]:not([data-name=\"ui\"]) button",
        id("browser-entry")
    ));
    browser.wait_for_text(&id("browser"), SHORT, |text| text.contains("_meta.yaml"));
    browser.click(&format!(
        "{}[data-kind=\"bundle\"] button",
        id("browser-entry")
    ));
    browser.wait_for_text(&id("import-summary"), SHORT, |text| !text.is_empty());
    browser.choose(&id("import-target"), "customer");
    browser.wait_for_text(&id("import-plan"), JOB, |text| text.contains("将在"));
    browser.click(&id("import-verify"));
    browser.wait_for_text(&id("import-verify-result"), JOB, |text| {
        text.contains("完整")
    });
    assert_chinese(&browser, "import plan");
    show(&browser, "import-plan");
    browser.screenshot(&shots.join("ui-import-zh.png"));
    browser.click(&id("import-start"));
    let said = summary(&browser);
    assert!(said.contains("全部 2 个镜像"), "{said}");
    assert_chinese(&browser, "upload");

    task(&browser, "watch");
    browser.type_into(&id("watch-list"), "team/app\n");
    browser.click(&id("watch-start"));
    browser.wait_for_text(&id("job-title"), JOB, |text| text.contains("进行中"));
    browser.click(&id("job-details"));
    browser.wait_for_text(&id("job-log"), JOB, |text| text.contains("第 1 轮"));
    browser.screenshot(&shots.join("ui-watch-zh.png"));
    browser.click(&id("job-stop"));
    summary(&browser);
    assert_chinese(&browser, "watch");

    for screen in ["history", "settings"] {
        task(&browser, screen);
        assert_chinese(&browser, screen);
        browser.screenshot(&shots.join(format!("ui-{screen}-zh.png")));
    }
}

/// Fails on any English word in the page's visible text and the job's log.
#[track_caller]
fn assert_chinese(browser: &Browser, after: &str) {
    let text = browser
        .run(
            "const clone = document.body.cloneNode(true); \
             clone.querySelectorAll('[hidden], select, script, style').forEach(n => n.remove()); \
             return clone.innerText + '\\n' + document.getElementById('job-log').textContent;",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    // Names are not words: image references, hosts, paths, digests and file names hold a
    // digit or one of these characters; units, product names, the registries' names in this
    // test's cfg.yaml and "U 盘" (a USB stick) are the same in Chinese.
    const NAMES: [&str; 15] = [
        "B",
        "KB",
        "MB",
        "GB",
        "TB",
        "Docker",
        "containerd",
        "cfg",
        "yaml",
        "meta",
        "sha256",
        "U",
        "nj",
        "gz",
        "customer",
    ];
    let english: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || "，。：；（）“”、,;()[]\"'·•".contains(c))
        .filter(|word| !word.is_empty())
        .filter(|word| {
            !word
                .chars()
                .any(|c| c.is_ascii_digit() || ":/._-@#%*?=<>".contains(c))
        })
        .filter(|word| word.chars().any(|c| c.is_ascii_alphabetic()))
        .filter(|word| !NAMES.contains(word))
        .collect();
    assert!(
        english.is_empty(),
        "English on the Chinese page after {after}: {english:?}\n{text}"
    );
}

#[test]
fn requests_without_the_token_or_from_another_name_are_refused() {
    let dir = workdir();
    let (_ui, url) = start_ui(dir.path(), &[]);
    let (address, token) = address_and_token(&url);
    for path in ["/", "/api/state", "/api/jobs/1/events", "/?token=wrong"] {
        let reply = raw_request(&address, "GET", path, "", "");
        assert!(reply.starts_with("HTTP/1.1 401"), "{path}: {reply}");
    }
    // A page elsewhere that made its name resolve to this machine, even with the token.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: rebound.example:80\r\nx-token: {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
    // A page elsewhere posting to this one (its browser names the page's origin).
    let reply = raw_request(
        &address,
        "POST",
        "/api/jobs",
        &format!(
            "x-token: {token}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n"
        ),
        r#"{"mode":"watch","source":"a","target":"b","list":"x"}"#,
    );
    assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
    assert!(!dir.path().join("data/ui").exists());

    // Only loopback: other machines must not reach it at all.
    let refused = crate::common::image_transmit(dir.path())
        .args(["ui", "--no-open", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}

#[test]
fn past_jobs_are_listed_again_after_a_restart() {
    let dir = workdir();
    fs_err::create_dir_all(dir.path().join("data/ui")).unwrap();
    write(
        dir.path(),
        "data/ui/job-1-100.json",
        r#"{"command":"copy","source":"a","target":"b","summary":{"total":2,"succeeded":1,"failed":1,"invalid":0,"cancelled":false},"images":[],"invalid":[]}"#,
    );
    let (_ui, url) = start_ui(dir.path(), &[]);
    let (address, token) = address_and_token(&url);
    let get = |path: &str| raw_request(&address, "GET", path, &format!("x-token: {token}\r\n"), "");
    let state = get("/api/state");
    assert!(state.contains(r#""mode":"transmit""#), "{state}");
    assert!(state.contains(r#""exit":1"#), "{state}");
    let job = get("/api/jobs/1");
    assert!(job.starts_with("HTTP/1.1 200"), "{job}");
    assert!(job.contains(r#""succeeded":1"#), "{job}");
    let report = get("/api/jobs/1/report");
    assert!(report.starts_with("HTTP/1.1 200"), "{report}");
    assert!(report.contains("attachment"), "{report}");
}
