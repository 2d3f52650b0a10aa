//! The original tool's command line, `-src=nj -dst=gz -lst=img.lst`, with its cfg.yaml.

use testkit::{Layer, TestRegistry, push_docker_image};

use crate::common::{image_transmit, served_digest, stderr_of, stdout_of, workdir, write};

#[test]
fn legacy_transmit_with_the_original_cfg_yaml() {
    let source = TestRegistry::start();
    let target = TestRegistry::start_with_auth("pusher", "target-pass");
    let app = push_docker_image(
        &source,
        "public/alpine",
        "3.11",
        &[Layer::random(10, 5_000)],
    );
    let dir = workdir();
    fs_err::create_dir(dir.path().join("data")).unwrap();
    // The original's sample, with its blank user/password, commented keys and a name.
    write(
        &dir.path().join("data"),
        "cfg.yaml",
        &format!(
            "source:\n- registry: \"{}\"\n  user:\n  password:\n  name: nj\ntarget:\n- registry: \"{}\"\n  user: pusher\n  password: target-pass\n  repository: yyyy\n  name: gz\nmaxconn: 3\nretries: 1\n#singlefile: false\ncompressor: tar\ncache:\n  pathname: cache\n",
            source.url(),
            target.url()
        ),
    );
    write(
        dir.path(),
        "img.lst",
        "10.45.80.21/public/alpine:3.11\npublic/alpine:3.11 -> alpine-2:3.5-2\n",
    );
    let output = image_transmit(dir.path())
        .args(["-src=nj", "-dst", "gz", "--lst=img.lst"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout_of(&output),
        stderr_of(&output)
    );
    assert_eq!(
        served_digest(&target, "yyyy/alpine", "3.11").as_deref(),
        Some(app.digest.as_str())
    );
    // A one-segment rename gets the namespace too (the original produced an empty name).
    assert_eq!(
        served_digest(&target, "yyyy/alpine-2", "3.5-2").as_deref(),
        Some(app.digest.as_str())
    );
}

#[test]
fn legacy_without_a_mode_prints_usage() {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .args(["-lst=x.lst"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("Invalid args"),
        "{}",
        stderr_of(&output)
    );
}
