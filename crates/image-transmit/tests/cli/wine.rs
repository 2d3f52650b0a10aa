//! The Windows build under Wine, as a user on a Windows jump host runs it: help in both
//! languages, the demo, a direct copy, copies into and out of an OCI layout and a docker
//! archive named by Windows paths, save → verify → upload and an incremental save in a
//! folder whose name has spaces and Chinese characters, with cfg.yaml and the image list as
//! Notepad and PowerShell write them, and the web UI started by a double-click (no arguments)
//! whose Stop ends a running job cleanly. Against real registries on loopback.
//!
//! Ignored in a plain `cargo test`: they need the .exe, which `scripts/wine-tests.sh` builds
//! before running them (and `.ci/run` runs that script).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use testkit::{Layer, TestRegistry, WindowsExe, push_oci_image, windows_path};

use crate::common::{
    Daemon, address_and_token, raw_request, served_digest, stderr_of, stdout_of, trickling_source,
    workdir,
};

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout_of(output),
        stderr_of(output)
    );
    assert!(
        !stderr_of(output).contains("panicked"),
        "{}",
        stderr_of(output)
    );
}

/// Notepad's UTF-8: a byte-order mark and CRLF line ends.
fn notepad_text(text: &str) -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(text.replace('\n', "\r\n").into_bytes());
    bytes
}

/// PowerShell 5's `>`: UTF-16 LE with a byte-order mark, CRLF line ends.
fn powershell_text(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(
        text.replace('\n', "\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    bytes
}

/// The meta file a save announced, as a path on this side of Wine.
fn announced_meta(dir: &Path, output: &Output) -> PathBuf {
    let stdout = stdout_of(output);
    let announced = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Create meta file: "))
        .unwrap_or_else(|| panic!("no meta announced:\n{stdout}\n{}", stderr_of(output)));
    let path = dir.join(announced.trim().replace('\\', "/"));
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn help_speaks_both_languages() {
    let exe = WindowsExe::from_env();
    let dir = workdir();
    let help = exe.command(dir.path()).arg("--help").output().unwrap();
    assert_ok(&help);
    assert!(stdout_of(&help).contains("copy"), "{}", stdout_of(&help));

    // A Chinese Windows: no LANG (Windows has none), the user's locale zh-CN (Wine takes it
    // from LC_ALL). The original's help (its flags with -h), its examples, come in Chinese,
    // readable UTF-8 through a pipe (a console gets the same text through the console's API).
    let chinese = exe
        .command(dir.path())
        .env_remove("LANG")
        .env("LC_ALL", "zh_CN.UTF-8")
        .args(["-src=nj", "-h"])
        .output()
        .unwrap();
    assert_ok(&chinese);
    let text = format!("{}{}", stdout_of(&chinese), stderr_of(&chinese));
    assert!(text.contains("镜像传输工具"), "{text}");
    assert!(text.contains("下载模式"), "{text}");
    assert!(text.contains("image-transmit.exe -src=nj"), "{text}");

    // The new command line's help too: every heading and text Chinese, the examples written
    // with the name the user started.
    let chinese = exe
        .command(dir.path())
        .env_remove("LANG")
        .env("LC_ALL", "zh_CN.UTF-8")
        .args(["save", "--help"])
        .output()
        .unwrap();
    assert_ok(&chinese);
    let text = stdout_of(&chinese);
    assert!(text.contains("用法：image-transmit.exe save"), "{text}");
    assert!(text.contains("把仓库中的镜像保存为离线包"), "{text}");
    assert!(
        !text.contains("Usage") && !text.contains("Options"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn demo_runs() {
    let exe = WindowsExe::from_env();
    let dir = workdir();
    let demo = exe.command(dir.path()).arg("demo").output().unwrap();
    assert_ok(&demo);
}

#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn copies_between_registries() {
    let exe = WindowsExe::from_env();
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "1.0", &[Layer::random(71, 300_000)]);
    let dir = workdir();
    let copy = exe
        .command(dir.path())
        .args(["copy", "--from", &source.url(), "--to", &target.url()])
        .arg("team/app:1.0 -> vendor/app:1.0")
        .output()
        .unwrap();
    assert_ok(&copy);
    assert_eq!(
        served_digest(&target, "vendor/app", "1.0"),
        Some(image.digest)
    );
}

/// `copy SOURCE DESTINATION` with Windows paths after the transport (`oci:C:\…`,
/// `docker-archive:C:\…`): the registry into a layout and an archive, then both back into a
/// registry with the image's digest; skopeo (on Linux) reads the layout the .exe wrote.
#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn copies_into_and_out_of_files_with_windows_paths() {
    let exe = WindowsExe::from_env();
    let source = TestRegistry::start();
    let image = push_oci_image(&source, "team/app", "2.0", &[Layer::random(72, 200_000)]);
    let dir = workdir();
    let layout = dir.path().join("镜像 layout");
    let archive = dir.path().join("app.tar");
    for destination in [
        format!("oci:{}", windows_path(&layout)),
        format!("docker-archive:{}", windows_path(&archive)),
    ] {
        let copy = exe
            .command(dir.path())
            .args(["copy", &source.url(), &destination, "team/app:2.0"])
            .output()
            .unwrap();
        assert_ok(&copy);
    }
    let skopeo = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!(
            "oci:{}:{}/team/app:2.0",
            layout.display(),
            source.host()
        ))
        .output()
        .unwrap();
    assert!(
        skopeo.status.success(),
        "{}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
    for file in [
        format!("oci:{}", windows_path(&layout)),
        format!("docker-archive:{}", windows_path(&archive)),
    ] {
        let target = TestRegistry::start();
        let copy = exe
            .command(dir.path())
            .args(["copy", &file, &target.url()])
            .output()
            .unwrap();
        assert_ok(&copy);
        assert_eq!(
            served_digest(&target, "team/app", "2.0").as_deref(),
            Some(image.digest.as_str()),
            "{file}"
        );
    }
}

/// What a user on the jump host does with a bundle: in a folder named with spaces and Chinese
/// characters, cfg.yaml saved by Notepad, the list by PowerShell, paths typed the Windows way.
#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn save_verify_upload_and_increment_in_a_chinese_folder() {
    let exe = WindowsExe::from_env();
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let base = Layer::random(72, 200_000);
    let first = push_oci_image(&source, "team/app", "1.0", std::slice::from_ref(&base));
    let second = push_oci_image(
        &source,
        "team/app",
        "1.1",
        &[base.clone(), Layer::random(73, 100_000)],
    );
    let scratch = workdir();
    let dir = scratch.path().join("交付 文件");
    fs_err::create_dir_all(&dir).unwrap();
    let config = dir.join("配置 cfg.yaml");
    fs_err::write(
        &config,
        notepad_text(&format!(
            "# 厂商仓库\nsource:\n- name: 南京\n  registry: {}\ntarget:\n- name: 客户\n  registry: {}\n  repository: delivered\n",
            source.url(),
            target.url()
        )),
    )
    .unwrap();
    fs_err::write(
        dir.join("镜像 列表.txt"),
        powershell_text("# 第一批\nteam/app:1.0\n"),
    )
    .unwrap();
    let config_arg = windows_path(&config);
    // The .exe in the delivery folder with that cfg.yaml; it must succeed.
    let run = |args: &[&str]| {
        let output = exe
            .command(&dir)
            .args(["--config", &config_arg])
            .args(args)
            .output()
            .unwrap();
        assert_ok(&output);
        output
    };

    let save = run(&["save", "--from", "南京", "--list", "镜像 列表.txt"]);
    let full = announced_meta(&dir, &save);
    let full_arg = windows_path(&full);
    run(&["verify", &full_arg]);
    run(&["upload", "--to", "客户", &full_arg]);
    assert_eq!(
        served_digest(&target, "delivered/app", "1.0"),
        Some(first.digest)
    );

    // The next delivery: only what the first one lacks.
    fs_err::write(dir.join("第二批.txt"), powershell_text("team/app:1.1\n")).unwrap();
    let increment = run(&[
        "save",
        "--from",
        "南京",
        "--list",
        "第二批.txt",
        "--incremental-from",
        &full_arg,
    ]);
    let increment = announced_meta(&dir, &increment);
    assert_ne!(increment, full);
    let bundle_bytes = |meta: &Path| -> u64 {
        let stem = meta
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("_meta.yaml", "");
        fs_err::read_dir(meta.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&stem))
            .map(|entry| entry.metadata().unwrap().len())
            .sum()
    };
    assert!(
        bundle_bytes(&increment) < bundle_bytes(&full),
        "the increment carries the base layer again"
    );
    run(&["upload", "--to", "客户", &windows_path(&increment)]);
    assert_eq!(
        served_digest(&target, "delivered/app", "1.1"),
        Some(second.digest)
    );
}

/// A request to the UI with its token; the status code and the body.
fn request(address: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let headers = format!("x-token: {token}\r\nContent-Type: application/json\r\n");
    let reply = raw_request(address, method, path, &headers, body);
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// Double-clicked: no arguments, started in the folder it was unpacked to, cfg.yaml beside it
/// (saved by PowerShell), the target added on the page and kept in that cfg.yaml (rewritten as
/// UTF-8 with a byte-order mark, the source entry kept). The page answers with its token only;
/// Stop ends a running transmit cleanly, its tag never pushed, through the job's standard input
/// (Wine's `taskkill` could not do it).
#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn double_click_starts_the_ui_and_stop_ends_a_job() {
    let exe = WindowsExe::from_env();
    let (_source, proxy, slow) = trickling_source(74);
    let target = TestRegistry::start();
    let scratch = workdir();
    let folder = scratch.path().join("镜像 工具");
    let exe = exe.install_into(&folder);
    fs_err::write(
        folder.join("cfg.yaml"),
        powershell_text(&format!(
            "source:\n- name: nj\n  registry: {}\n",
            proxy.url()
        )),
    )
    .unwrap();
    let ui = Daemon::spawn(exe.command(&folder));
    let (address, token) = address_and_token(&ui.ui_address());
    assert_eq!(request(&address, "GET", "/", "", "").0, 401);
    let (status, page) = request(&address, "GET", &format!("/?token={token}"), "", "");
    assert_eq!(status, 200, "{page}");
    let added = format!(
        r#"{{"side":"target","name":"gz","registry":"{}","keep":true}}"#,
        target.url()
    );
    let (status, reply) = request(&address, "POST", "/api/registries", &token, &added);
    assert_eq!(status, 200, "{reply}");
    let kept = fs_err::read(folder.join("cfg.yaml")).unwrap();
    let kept = String::from_utf8(kept).unwrap();
    assert!(kept.starts_with('\u{feff}'), "{kept:?}");
    assert!(
        kept.contains("- name: nj") && kept.contains("- name: \"gz\""),
        "{kept}"
    );
    let (status, state) = request(&address, "GET", "/api/state", &token, "");
    assert_eq!(status, 200);
    assert!(state.contains("nj") && state.contains("gz"), "{state}");

    let (status, started) = request(
        &address,
        "POST",
        "/api/jobs",
        &token,
        r#"{"mode":"transmit","source":"nj","target":"gz","list":"team/big:1\n"}"#,
    );
    assert_eq!(status, 200, "{started}");
    let id: serde_json::Value = serde_json::from_str(&started).unwrap();
    let id = id["id"].as_u64().unwrap();
    assert!(
        proxy
            .wait_for(Duration::from_secs(60), |seen| seen.method == "GET"
                && seen.path.contains(slow.digest()))
            .is_some(),
        "the job never started downloading"
    );
    let (status, stopped) = request(
        &address,
        "POST",
        &format!("/api/jobs/{id}/stop"),
        &token,
        "",
    );
    assert_eq!(status, 200, "{stopped}");
    let started = Instant::now();
    let job = loop {
        let (_, job) = request(&address, "GET", &format!("/api/jobs/{id}"), &token, "");
        let job: serde_json::Value = serde_json::from_str(&job).unwrap();
        if job["running"] == serde_json::json!(false) {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job did not stop: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(job["outcome"]["exit"], serde_json::json!(1), "{job}");
    assert_eq!(
        job["outcome"]["report"]["summary"]["cancelled"],
        serde_json::json!(true),
        "{job}"
    );
    assert_eq!(served_digest(&target, "team/big", "1"), None);
}

/// Ctrl-C at a Command Prompt while a layer trickles in stops the copy cleanly: exit status 1
/// (stopped, not killed, which would be STATUS_CONTROL_C_EXIT) and no tag pushed.
#[test]
#[ignore = "needs the Windows build: scripts/wine-tests.sh"]
fn ctrl_c_in_a_console_stops_a_copy_cleanly() {
    let exe = WindowsExe::from_env();
    let (_source, proxy, slow) = trickling_source(75);
    let target = TestRegistry::start();
    let dir = workdir();
    let copy = exe
        .command_with_ctrl_c(
            dir.path(),
            &[
                "copy",
                "--from",
                &proxy.url(),
                "--to",
                &target.url(),
                "team/big:1",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let busy = proxy.wait_for(Duration::from_secs(60), |seen| {
        seen.method == "GET" && seen.path.contains(slow.digest())
    });
    fs_err::write(dir.path().join("press-ctrl-c"), "").unwrap();
    let output = copy.wait_with_output().unwrap();
    let text = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert!(busy.is_some(), "the copy never started downloading: {text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(served_digest(&target, "team/big", "1"), None);
}
