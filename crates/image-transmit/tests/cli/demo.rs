//! `image-transmit demo`, the README's first command: it must work with nothing installed
//! beyond the binary, in either language, and leave nothing behind.

use crate::common::{image_transmit, stdout_of, workdir};

#[test]
fn demo_builds_saves_serves_copies_and_verifies_one_digest() {
    let dir = workdir();
    let output = image_transmit(dir.path()).arg("demo").output().unwrap();
    let text = stdout_of(&output);
    assert!(output.status.success(), "{text}");
    for step in ["1. ", "2. ", "3. ", "4. ", "5. "] {
        assert!(text.contains(step), "missing step {step}: {text}");
    }
    let digest = text
        .split_whitespace()
        .find(|word| word.starts_with("sha256:") && word.len() == 71)
        .unwrap_or_else(|| panic!("no full digest in: {text}"));
    let short = &digest[..19];
    assert!(text.contains(short), "{text}");
    assert!(text.contains("http://127.0.0.1:"), "{text}");
    // Nothing in the working directory; the scratch directory is gone.
    assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
    let scratch = text
        .split_whitespace()
        .find(|word| word.contains("image-transmit-demo-") && !word.ends_with(".yaml"))
        .map(|word| word.trim_end_matches(','))
        .unwrap_or_else(|| panic!("no scratch path in: {text}"));
    assert!(
        !std::path::Path::new(scratch).exists(),
        "{scratch} left behind"
    );
}

#[test]
fn demo_speaks_chinese() {
    let output = image_transmit(workdir().path())
        .env("LANG", "zh_CN.UTF-8")
        .arg("demo")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        stdout_of(&output).contains("摘要"),
        "{}",
        stdout_of(&output)
    );
}
