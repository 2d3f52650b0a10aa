//! Every failure a user can cause ends in one clear sentence, the right exit status, no panic
//! and no password on screen.

use testkit::{CountingRelay, Layer, TestRegistry, push_docker_image};

use crate::common::{copy_between, image_transmit, stderr_of, stdout_of, workdir, write};

fn output_text(output: &std::process::Output) -> String {
    format!("{}{}", stdout_of(output), stderr_of(output))
}

fn assert_no_panic(output: &std::process::Output) {
    assert!(
        !output_text(output).contains("panicked"),
        "{}",
        output_text(output)
    );
}

#[test]
fn unknown_registry_name_is_a_usage_error() {
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        "source:\n- name: nj\n  registry: http://127.0.0.1:1\ntarget:\n- name: gz\n  registry: http://127.0.0.1:2\n",
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nope", "--to", "gz", "a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr_of(&output);
    assert!(text.contains("nope") && text.contains("nj"), "{text}");
    assert_no_panic(&output);
}

#[test]
fn malformed_reference_and_missing_image_are_invalid_not_fatal() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let good = push_docker_image(&source, "team/good", "1", &[Layer::random(11, 1_000)]);
    let output = copy_between(workdir().path(), &source, &target)
        .args(["Team/Bad:1", "team/missing:1", "team/good:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout_of(&output);
    assert!(text.contains("Team/Bad:1"), "{text}");
    // Each line is named once, its reason after it.
    assert!(
        text.contains("team/missing:1: not found on source registry"),
        "{text}"
    );
    assert!(!text.contains("Image team/missing:1 not found"), "{text}");
    assert!(
        text.contains("Team/Bad:1: repository names must be lowercase"),
        "{text}"
    );
    assert!(
        text.contains("3 images: 1 succeeded, 0 failed, 2 invalid"),
        "{text}"
    );
    assert!(
        testkit::skopeo_inspect_raw(&target, "team/good", "1").is_some(),
        "{}",
        good.digest
    );
    assert_no_panic(&output);
}

#[test]
fn wrong_password_is_one_clear_line_without_the_password() {
    let source = TestRegistry::start_with_auth("user", "right-pass");
    let target = TestRegistry::start();
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\n  user: user\n  password: Wr0ngSecret\ntarget:\n- name: gz\n  registry: {}\n",
            source.url(),
            target.url()
        ),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = output_text(&output);
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(!text.contains("Wr0ngSecret"), "{text}");
    assert_eq!(stderr_of(&output).trim().lines().count(), 1, "{text}");
    assert_no_panic(&output);
}

#[test]
fn missing_login_is_explained() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_with_auth("user", "pass");
    push_docker_image(&source, "a/b", "1", &[Layer::random(12, 1_000)]);
    let output = copy_between(workdir().path(), &source, &target)
        .args(["a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("requires a login"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn tls_without_the_ca_is_refused_with_a_hint() {
    let source = TestRegistry::start_tls();
    let target = TestRegistry::start();
    let output = copy_between(workdir().path(), &source, &target)
        .args(["a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr_of(&output);
    assert!(
        text.contains("is not trusted") && text.contains("cacert"),
        "{text}"
    );
    assert_no_panic(&output);
}

/// Without a scheme an HTTPS registry is tried over plain HTTP only when HTTPS is not spoken
/// there at all: an untrusted certificate is reported, never worked around.
#[test]
fn tls_without_the_ca_is_refused_when_the_address_has_no_scheme() {
    let source = TestRegistry::start_tls();
    let relay = CountingRelay::start(&source.host());
    let target = TestRegistry::start();
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!("source:\n- name: lan\n  registry: \"{}\"\n", relay.host()),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "lan", "--to", &target.url(), "a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr_of(&output);
    assert!(
        text.contains("is not trusted") && text.contains("cacert"),
        "{text}"
    );
    assert_no_panic(&output);
    assert_eq!((relay.tls_connections(), relay.plain_connections()), (1, 0));
}

#[test]
fn unreachable_host_is_reported() {
    let mut gone = TestRegistry::start();
    let url = gone.url();
    gone.stop();
    let target = TestRegistry::start();
    let output = image_transmit(workdir().path())
        .args(["copy", "--from", &url, "--to", &target.url(), "a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("Cannot reach registry"),
        "{}",
        output_text(&output)
    );
    assert_no_panic(&output);
}

#[test]
fn broken_cfg_yaml_names_the_file_and_line() {
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        "source:\n- name: nj\n  registry: [unclosed\n",
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "a/b:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("cfg.yaml"),
        "{}",
        stderr_of(&output)
    );
    assert_no_panic(&output);
}

#[test]
fn unknown_cfg_keys_are_warned_not_fatal() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    push_docker_image(&source, "a/b", "1", &[Layer::random(13, 1_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n- name: nj\n  registry: {}\ntarget:\n- name: gz\n  registry: {}\n  registri: typo\nfuturekey: 1\n",
            source.url(),
            target.url()
        ),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "a/b:1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    let text = stderr_of(&output);
    assert!(
        text.contains("futurekey") && text.contains("registri"),
        "{text}"
    );
}

#[test]
fn empty_list_is_a_usage_error() {
    let dir = workdir();
    write(dir.path(), "empty.lst", "# nothing\n\n");
    let output = image_transmit(dir.path())
        .args([
            "copy",
            "--from",
            "http://127.0.0.1:1",
            "--to",
            "http://127.0.0.1:2",
            "--list",
            "empty.lst",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("Empty image list"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn messages_follow_the_chosen_language() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let output = copy_between(workdir().path(), &source, &target)
        .env("LANG", "zh_CN.UTF-8")
        .args(["team/missing:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout_of(&output);
    assert!(text.contains("无效") || text.contains("未找到"), "{text}");
}

/// Lists and cfg.yaml as Windows tools save them are read; text in another encoding (a Chinese
/// Windows' "ANSI", GBK) and a file name that is not Unicode are refused with one sentence.
#[test]
fn windows_text_files_are_read_and_other_encodings_refused() {
    let source = TestRegistry::start();
    let target = TestRegistry::start();
    let image = push_docker_image(&source, "team/app", "1", &[Layer::random(81, 1000)]);
    let dir = workdir();
    let mut config = b"\xEF\xBB\xBF".to_vec();
    config.extend(
        format!(
            "# 配置\r\nsource:\r\n- name: nj\r\n  registry: {}\r\ntarget:\r\n- name: gz\r\n  registry: {}\r\n",
            source.url(),
            target.url()
        )
        .into_bytes(),
    );
    fs_err::write(dir.path().join("cfg.yaml"), config).unwrap();
    let mut list = vec![0xFF, 0xFE];
    list.extend(
        "# 第一批\r\nteam/app:1\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    fs_err::write(dir.path().join("list.txt"), list).unwrap();
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "--list", "list.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    assert_eq!(
        crate::common::served_digest(&target, "team/app", "1"),
        Some(image.digest)
    );

    fs_err::write(
        dir.path().join("gbk.txt"),
        b"# \xBE\xB5\xCF\xF1\nteam/app:1\n",
    )
    .unwrap();
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "--list", "gbk.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    let text = stderr_of(&output);
    assert!(
        text.contains("gbk.txt") && text.contains("neither UTF-8 nor UTF-16"),
        "{text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert_no_panic(&output);

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"\xBE\xB5\xCF\xF1.txt");
        let output = image_transmit(dir.path())
            .args(["copy", "--from", "nj", "--to", "gz", "--list"])
            .arg(name)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
        assert!(
            stderr_of(&output).contains("not valid Unicode"),
            "{}",
            output_text(&output)
        );
        assert_no_panic(&output);
    }
}

/// A list error names the line as an editor numbers it, a byte-order mark included.
#[test]
fn list_errors_name_the_line_an_editor_shows() {
    let dir = workdir();
    fs_err::write(
        dir.path().join("list.txt"),
        "\u{feff}team/app\u{ff1a}1\nteam/web:1\n",
    )
    .unwrap();
    let output = image_transmit(dir.path())
        .args([
            "copy",
            "--from",
            "http://127.0.0.1:1",
            "--to",
            "http://127.0.0.1:2",
        ])
        .args(["--list", "list.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    let text = stderr_of(&output);
    assert!(text.contains("line 1 has U+FF1A"), "{text}");
    assert!(!text.contains("FEFF"), "{text}");
    assert_no_panic(&output);
}

/// `--help` speaks the language messages would: the flag, else cfg.yaml's `lang`, else LANG.
#[test]
fn help_speaks_the_language_of_the_messages() {
    let dir = workdir();
    let help = |args: &[&str], lang: &str| {
        let output = image_transmit(dir.path())
            .env("LANG", lang)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
        stdout_of(&output)
    };
    let english = help(&["copy", "--help"], "C.UTF-8");
    assert!(
        english.contains("Usage:") && english.contains("Where the images come from"),
        "{english}"
    );
    let chinese = help(&["--lang", "zh_CN", "copy", "--help"], "C.UTF-8");
    assert!(
        chinese.contains("用法：") && chinese.contains("镜像从哪里来"),
        "{chinese}"
    );
    assert!(!chinese.contains("Usage:"), "{chinese}");
    let chinese = help(&["help", "save"], "zh_CN.UTF-8");
    assert!(chinese.contains("离线包"), "{chinese}");
    write(dir.path(), "cfg.yaml", "lang: zh_CN\n");
    let chinese = help(&["--help"], "en_US.UTF-8");
    assert!(
        chinese.contains("示例：") && chinese.contains("-src"),
        "{chinese}"
    );
    // The language flag wins over cfg.yaml, as it does for messages.
    let english = help(&["--lang", "en_US", "--help"], "zh_CN.UTF-8");
    assert!(english.contains("Examples:"), "{english}");
}

/// A mistyped option or command, a bad number or an option the command does not take: one
/// sentence in the user's language, the usage line, where to find help, and exit status 2.
#[test]
fn command_line_mistakes_are_one_sentence_in_the_users_language() {
    let dir = workdir();
    let everything = std::cell::RefCell::new(String::new());
    let run = |args: &[&str]| {
        let output = image_transmit(dir.path())
            .env("LANG", "zh_CN.UTF-8")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
        assert_no_panic(&output);
        assert!(stdout_of(&output).is_empty(), "{}", stdout_of(&output));
        everything.borrow_mut().push_str(&stderr_of(&output));
        stderr_of(&output)
    };
    let text = run(&["copy", "--form", "nj", "--to", "gz"]);
    assert!(
        text.contains("--form 不是此命令的选项；是否想用 --from？"),
        "{text}"
    );
    assert!(text.contains("用法：image-transmit copy"), "{text}");
    assert!(
        text.contains("查看帮助请运行：image-transmit copy --help"),
        "{text}"
    );
    let text = run(&["sav", "--from", "nj"]);
    assert!(
        text.contains("没有名为 sav 的命令；是否想用 save？"),
        "{text}"
    );
    let text = run(&["save", "--from", "nj", "--maxconn", "many"]);
    assert!(
        text.contains("many 不是 --maxconn <N> 的有效取值"),
        "{text}"
    );
    let text = run(&["verify", "--retries", "3", "x_meta.yaml"]);
    assert!(text.contains("--retries 不是此命令的选项"), "{text}");
    let text = run(&["upload", "x_meta.yaml"]);
    assert!(text.contains("缺少必需的参数：--to <DST>"), "{text}");
    let text = run(&[
        "watch",
        "--from",
        "a",
        "--to",
        "b",
        "--list",
        "l",
        "--interval",
        "5",
        "--cron",
        "* * * * *",
    ]);
    assert!(
        text.contains("不能与") && text.contains("同时使用"),
        "{text}"
    );
    let everything = everything.borrow().clone();
    for english in [
        "error:",
        "Usage:",
        "tip:",
        "unexpected",
        "For more information",
    ] {
        assert!(!everything.contains(english), "{english} in {everything}");
    }
    // No command at all: the help, on standard error, and status 2.
    let text = run(&[]);
    assert!(text.contains("示例："), "{text}");
}

/// An unreachable registry is one plain sentence saying why and what to check, in the user's
/// language; the library's own chain only with -v.
#[test]
fn an_unreachable_registry_is_one_sentence_and_the_details_come_with_v() {
    let dir = workdir();
    let port = testkit::free_port();
    let refused = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str], lang: &str| {
        let output = image_transmit(dir.path())
            .env("LANG", lang)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
        assert_no_panic(&output);
        stderr_of(&output)
    };
    let text = run(
        &["copy", "--from", &refused, "--to", &refused, "a/b:1"],
        "C.UTF-8",
    );
    assert!(
        text.contains("nothing answers at that address and port"),
        "{text}"
    );
    for raw in ["os error", "tcp connect", "client error"] {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
    let text = run(
        &["copy", "-v", "--from", &refused, "--to", &refused, "a/b:1"],
        "zh_CN.UTF-8",
    );
    assert!(text.contains("该地址和端口上没有服务应答"), "{text}");
    assert!(
        text.contains("Connection refused"),
        "-v shows the chain: {text}"
    );
    let unknown = "http://no-such-registry.invalid:5000";
    let text = run(
        &["copy", "--from", unknown, "--to", &refused, "a/b:1"],
        "C.UTF-8",
    );
    assert!(text.contains("its host name is not known here"), "{text}");
}
