//! Logging in, end to end: bearer tokens from a real token-protocol server verified by the real
//! registry (scopes asked, cross-repository mounts, wrong passwords, tokens that run out mid-job),
//! credentials from Docker's `config.json` (`auths`, `credHelpers`, `credsStore`) when cfg.yaml
//! has none, and `skiptlsverify` for a registry whose certificate nobody vouches for.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::proxy::{FaultProxy, Rule};
use testkit::{Anonymous, Layer, TestRegistry, TokenServerOptions, push_oci_image};

use crate::common::{image_transmit, served_digest, stderr_of, stdout_of, workdir, write};

fn output_text(output: &std::process::Output) -> String {
    format!("{}{}", stdout_of(output), stderr_of(output))
}

fn assert_success(output: &std::process::Output) {
    assert!(output.status.success(), "{}", output_text(output));
}

/// A cfg.yaml entry; `login` adds `user` and `password`.
fn entry(name: &str, url: &str, login: Option<(&str, &str)>) -> String {
    let mut text = format!("- name: {name}\n  registry: {url}\n");
    if let Some((user, password)) = login {
        text.push_str(&format!("  user: {user}\n  password: {password}\n"));
    }
    text
}

#[test]
fn copy_into_and_out_of_a_token_registry() {
    let source = TestRegistry::start();
    let (tokened, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions::default());
    let back = TestRegistry::start();
    // A shared base layer: the second image's copy of it should be a cross-repository mount,
    // which needs a token for two repositories at once.
    let base = Layer::random(101, 40_000);
    let a = push_oci_image(
        &source,
        "team/a",
        "1",
        &[base.clone(), Layer::random(102, 10_000)],
    );
    let b = push_oci_image(&source, "team/b", "1", &[base, Layer::random(103, 10_000)]);
    let dir = workdir();
    let login = Some(tokens.credentials());
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n{}{}target:\n{}{}",
            entry("plain", &source.url(), None),
            entry("tok", &tokened.url(), login),
            entry("tok", &tokened.url(), login),
            entry("back", &back.url(), None),
        ),
    );

    let output = image_transmit(dir.path())
        .args([
            "copy", "--from", "plain", "--to", "tok", "--json", "in.json",
        ])
        .args(["team/a:1", "team/b:1"])
        .output()
        .unwrap();
    assert_success(&output);
    let asked = tokens.requests();
    for image in [&a, &b] {
        assert_eq!(
            served_digest(&tokened, &image.repository, &image.tag).as_deref(),
            Some(image.digest.as_str())
        );
        let scope = format!("repository:{}:pull,push", image.repository);
        assert!(tokens.tokens_issued_for(&scope) >= 1, "{asked:#?}");
    }
    // Every token request carried the cfg.yaml login, none was refused.
    assert!(
        asked
            .iter()
            .all(|r| r.issued && r.user.as_deref() == Some("token-user")),
        "{asked:#?}"
    );
    let report: Value =
        serde_json::from_slice(&fs_err::read(dir.path().join("in.json")).unwrap()).unwrap();
    assert_eq!(report["blobs"]["mounted"], 1, "{report}");
    // Whichever image moved the base layer first, the other mounted it from there.
    let mount_scopes: HashSet<&str> = asked
        .iter()
        .filter(|r| r.scopes.len() == 2)
        .flat_map(|r| r.scopes.iter().map(String::as_str))
        .collect();
    let a_into_b = HashSet::from(["repository:team/b:pull,push", "repository:team/a:pull"]);
    let b_into_a = HashSet::from(["repository:team/a:pull,push", "repository:team/b:pull"]);
    assert!(
        mount_scopes == a_into_b || mount_scopes == b_into_a,
        "{asked:#?}"
    );

    // And out again: the token registry as a source needs only pull.
    tokens.clear_requests();
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "tok", "--to", "back", "team/a:1"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(&back, "team/a", "1").as_deref(),
        Some(a.digest.as_str())
    );
    let asked = tokens.requests();
    assert!(
        tokens.tokens_issued_for("repository:team/a:pull") >= 1,
        "{asked:#?}"
    );
    assert!(
        asked
            .iter()
            .all(|r| !r.scopes.iter().any(|s| s.ends_with("push"))),
        "a source needs no push rights: {asked:#?}"
    );
}

#[test]
fn wrong_password_at_the_token_server_is_one_clear_line() {
    let source = TestRegistry::start();
    let (target, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions::default());
    push_oci_image(&source, "team/app", "1", &[Layer::random(111, 1_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n{}target:\n{}",
            entry("nj", &source.url(), None),
            entry(
                "gz",
                &target.url(),
                Some(("token-user", "Wr0ngTokenSecret"))
            ),
        ),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let text = output_text(&output);
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(text.contains(&target.host()), "{text}");
    assert!(!text.contains("Wr0ngTokenSecret"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(stderr_of(&output).trim().lines().count(), 1, "{text}");
    // The password did reach the token server, which refused it; nothing was issued.
    let asked = tokens.requests();
    assert!(!asked.is_empty(), "the token server was never asked");
    assert!(
        asked
            .iter()
            .all(|r| !r.issued && r.user.as_deref() == Some("token-user")),
        "{asked:#?}"
    );
    assert_eq!(served_digest(&target, "team/app", "1"), None);
}

#[test]
fn anonymous_pull_from_a_public_token_registry_but_no_anonymous_push() {
    let (public, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions {
        anonymous: Anonymous::Pull,
        ..TokenServerOptions::default()
    });
    let other = TestRegistry::start();
    let image = push_oci_image(&public, "team/app", "1", &[Layer::random(121, 2_000)]);
    tokens.clear_requests();

    let output = image_transmit(workdir().path())
        .args(["copy", "--from", &public.url(), "--to", &other.url()])
        .arg("team/app:1")
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(&other, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
    let asked = tokens.requests();
    assert!(!asked.is_empty(), "no token was fetched");
    assert!(asked.iter().all(|r| r.user.is_none()), "{asked:#?}");

    // Anonymous tokens grant pull only, so pushing needs a login and must say so.
    let output = image_transmit(workdir().path())
        .args(["copy", "--from", &other.url(), "--to", &public.url()])
        .arg("team/app:1->team/pushed:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let text = output_text(&output);
    assert!(text.contains("requires a login"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(served_digest(&public, "team/pushed", "1"), None);
}

/// Many token servers answer an anonymous request with 401 (nothing there is public). With no
/// login configured anywhere, the user must be told to log in, not that the user name and
/// password they never gave are wrong.
#[test]
fn no_login_at_a_token_server_that_refuses_anonymous_requests_asks_for_one() {
    let (private, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions {
        anonymous: Anonymous::Refused,
        ..TokenServerOptions::default()
    });
    let other = TestRegistry::start();
    push_oci_image(&private, "team/app", "1", &[Layer::random(125, 1_000)]);
    tokens.clear_requests();

    let output = image_transmit(workdir().path())
        .args(["copy", "--from", &private.url(), "--to", &other.url()])
        .arg("team/app:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let asked = tokens.requests();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r.user.is_none() && !r.issued),
        "{asked:#?}"
    );
    let text = output_text(&output);
    assert!(text.contains("requires a login"), "{text}");
    assert!(!text.contains("check user and password"), "{text}");
}

/// A valid login without push rights: the token server issues a pull-only token and the
/// registry answers 401 `insufficient_scope`. The password is right, so the user must hear that
/// the account lacks permission, not that the password is wrong.
#[test]
fn read_only_login_pushing_is_told_it_lacks_permission() {
    let source = TestRegistry::start();
    let (target, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions {
        read_only: Some(("reader".to_owned(), "reader-pass".to_owned())),
        ..TokenServerOptions::default()
    });
    push_oci_image(&source, "team/app", "1", &[Layer::random(126, 1_000)]);
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n{}target:\n{}",
            entry("nj", &source.url(), None),
            entry("gz", &target.url(), Some(("reader", "reader-pass"))),
        ),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let asked = tokens.requests();
    assert!(
        asked
            .iter()
            .all(|r| r.issued && r.user.as_deref() == Some("reader")),
        "the login itself was accepted: {asked:#?}"
    );
    let text = output_text(&output);
    assert!(text.contains("lacks permission"), "{text}");
    assert!(!text.contains("check user and password"), "{text}");
    assert_eq!(served_digest(&target, "team/app", "1"), None);
}

/// Tokens live 2 s, and a layer read slowly from the source keeps the job going for about 4 s:
/// the token taken at the start is dead by the time the manifest is pushed. The registry
/// answers 401 and the client must fetch a new token for the same scope and carry on.
#[test]
fn tokens_that_expire_mid_job_are_renewed() {
    const LIFETIME: Duration = Duration::from_secs(2);
    let source = TestRegistry::start();
    let (target, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions {
        lifetime: LIFETIME,
        ..TokenServerOptions::default()
    });
    let slow_layer = Layer::random(131, 64 * 1024);
    let image = push_oci_image(
        &source,
        "team/slow",
        "1",
        &[Layer::random(132, 1_000), slow_layer.clone()],
    );
    // The real source registry behind a proxy that sends this one blob 4 KiB every 250 ms.
    let proxy = FaultProxy::start(&source);
    proxy.add(Rule::slow_body(
        "GET",
        slow_layer.digest(),
        4 * 1024,
        Duration::from_millis(250),
    ));
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n{}target:\n{}",
            entry("nj", &proxy.url(), None),
            entry("gz", &target.url(), Some(tokens.credentials())),
        ),
    );

    let started = Instant::now();
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/slow:1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "team/slow", "1").as_deref(),
        Some(image.digest.as_str())
    );
    assert!(
        proxy.requests().iter().any(|r| r.faulted),
        "the slow layer was never fetched through the proxy"
    );
    assert!(
        took > LIFETIME * 3 / 2,
        "the job took {took:?}, too short for a token to expire"
    );
    let scope = "repository:team/slow:pull,push";
    assert!(
        tokens.tokens_issued_for(scope) >= 2,
        "no second token for {scope}: {:#?}",
        tokens.requests()
    );
}

/// Standard base64 with padding, as `docker login` writes `auth` (this crate has no base64
/// dependency and a test should not add one).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, &byte)| {
            acc | u32::from(byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A Docker config directory with `config` as its `config.json`.
fn docker_config(dir: &Path, config: &Value) -> PathBuf {
    let docker = dir.join("docker");
    fs_err::create_dir_all(&docker).unwrap();
    fs_err::write(docker.join("config.json"), config.to_string()).unwrap();
    docker
}

#[test]
fn base64_matches_the_standard() {
    assert_eq!(base64("pusher:pw"), "cHVzaGVyOnB3");
    assert_eq!(base64("a:bc"), "YTpiYw==");
    assert_eq!(base64("a:b"), "YTpi");
    assert_eq!(base64("ab:c1"), "YWI6YzE=");
}

#[test]
fn docker_config_auths_log_in_when_cfg_yaml_has_no_password() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_with_auth("pusher", "docker-login-pass");
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(141, 3_000)]);
    let dir = workdir();
    let auth = base64("pusher:docker-login-pass");
    let docker = docker_config(
        dir.path(),
        &json!({ "auths": { target.host(): { "auth": auth } } }),
    );
    let output = image_transmit(dir.path())
        .env("DOCKER_CONFIG", &docker)
        .args(["copy", "--from", &source.url(), "--to", &target.url()])
        .arg("team/app:1")
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
}

/// A `docker-credential-NAME` program in `bin` (a shell script: Unix only) that answers `get` with a fixed login, as
/// docker-credential-pass or -secretservice would, and notes which server it was asked about.
#[cfg(unix)]
fn credential_helper(bin: &Path, name: &str, user: &str, secret: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let log = bin.join(format!("{name}.asked"));
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = get ] || exit 3\n\
         # The server comes on stdin without a newline, so read fails but still fills the variable.\n\
         read -r server || true\n\
         printf '%s\\n' \"$server\" >> '{log}'\n\
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\n",
        log = log.display(),
    );
    let path = bin.join(format!("docker-credential-{name}"));
    fs_err::write(&path, script).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

#[test]
#[cfg(unix)]
fn credential_helpers_and_stores_from_docker_config_are_asked() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_with_auth("helper-user", "helper-pass");
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(151, 3_000)]);
    let dir = workdir();
    let bin = dir.path().join("bin");
    fs_err::create_dir(&bin).unwrap();
    let helper_log = credential_helper(&bin, "testhelper", "helper-user", "helper-pass");
    let store_log = credential_helper(&bin, "teststore", "helper-user", "helper-pass");
    // The helpers come first on the child's PATH; the rest stays for everything else.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let cases = [
        (
            "credHelpers",
            json!({ "credHelpers": { target.host(): "testhelper" } }),
            &helper_log,
        ),
        (
            "credsStore",
            json!({ "credsStore": "teststore" }),
            &store_log,
        ),
    ];
    for (case, config, log) in cases {
        let docker = docker_config(&dir.path().join(case), &config);
        let destination = format!("team/app:1->{}/app:1", case.to_ascii_lowercase());
        let output = image_transmit(dir.path())
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .args(["copy", "--from", &source.url(), "--to", &target.url()])
            .arg(&destination)
            .output()
            .unwrap();
        assert!(output.status.success(), "{case}: {}", output_text(&output));
        assert_eq!(
            served_digest(&target, &format!("{}/app", case.to_ascii_lowercase()), "1").as_deref(),
            Some(image.digest.as_str()),
            "{case}"
        );
        // Asked about the target alone, by the key Docker itself would use.
        let asked = fs_err::read_to_string(log).unwrap();
        let asked: HashSet<&str> = asked.lines().collect();
        assert_eq!(asked, HashSet::from([target.host().as_str()]), "{case}");
    }
}

#[test]
fn skiptlsverify_accepts_a_certificate_nobody_vouches_for() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_tls();
    let image = push_oci_image(&source, "team/app", "1", &[Layer::random(161, 2_000)]);
    let dir = workdir();
    let cfg = |skip: bool| {
        format!(
            "source:\n{}target:\n{}  skiptlsverify: {skip}\n",
            entry("nj", &source.url(), None),
            entry("gz", &target.url(), None),
        )
    };

    // No cacert and no skiptlsverify: the test CA is unknown, so the copy must fail.
    write(dir.path(), "cfg.yaml", &cfg(false));
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(
        stderr_of(&output).contains("is not trusted"),
        "{}",
        output_text(&output)
    );
    assert_eq!(served_digest(&target, "team/app", "1"), None);

    write(dir.path(), "cfg.yaml", &cfg(true));
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(image.digest.as_str())
    );
}

/// A registry whose token service is another host reached over plain HTTP does not get the
/// password: the token is asked for without it, and the refusal is explained as such. (The
/// registry is named `localhost` here, its realm `127.0.0.1`: two host names.)
#[test]
fn a_password_is_not_sent_to_a_token_service_on_another_host_over_plain_http() {
    let source = TestRegistry::start();
    let (target, tokens) = TestRegistry::start_with_token_auth(TokenServerOptions::default());
    push_oci_image(&source, "team/app", "1", &[Layer::random(112, 1_000)]);
    let by_another_name = target.url().replace("127.0.0.1", "localhost");
    let dir = workdir();
    write(
        dir.path(),
        "cfg.yaml",
        &format!(
            "source:\n{}target:\n{}",
            entry("nj", &source.url(), None),
            entry("gz", &by_another_name, Some(("token-user", "token-pass"))),
        ),
    );
    let output = image_transmit(dir.path())
        .args(["copy", "--from", "nj", "--to", "gz", "team/app:1"])
        .output()
        .unwrap();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the password was not sent") || text.contains("it was not sent"),
        "{text}"
    );
    assert!(text.contains(&tokens.realm()), "{text}");
    let asked = tokens.requests();
    assert!(!asked.is_empty(), "the token server was never asked");
    assert!(asked.iter().all(|r| r.user.is_none()), "{asked:#?}");
    assert_eq!(served_digest(&target, "team/app", "1"), None);
}
