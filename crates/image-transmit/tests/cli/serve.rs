//! `serve`: bundles written by a real `save` from a real registry, served by the real binary,
//! and read back by skopeo (which verifies every digest), by our own `copy`, and by a tiny
//! raw-HTTP client for what those two do not show (headers, ranges, listings, errors).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{Layer, TestRegistry, push_docker_image, push_oci_image, push_oci_index};

use crate::common::{image_transmit, served_digest, stderr_of, stdout_of, workdir};

/// How long the server may take to print its address, and a client request to finish.
const PATIENCE: Duration = Duration::from_secs(30);

/// `image-transmit serve` running as a child process on a port of its own choosing. Dropping
/// it kills the child.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`, as the server announced it.
    host: String,
    /// Kept open: a closed pipe would make the server's closing line fail.
    stdout: BufReader<ChildStdout>,
    /// Drained all along, since debug logging would otherwise fill the pipe and block the
    /// server.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    #[track_caller]
    fn start(dir: &Path, metas: &[&Path]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_image-transmit"))
            .current_dir(dir)
            .env("LANG", "en_US.UTF-8")
            .env_remove("lang")
            .env("DOCKER_CONFIG", dir.join("no-docker-config"))
            .env("RUST_LOG", "debug")
            .arg("serve")
            .args(metas)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        // Read the announcement on a thread so a server that never speaks fails the test
        // instead of hanging it.
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send((line, reader));
        });
        let Ok((line, stdout)) = receiver.recv_timeout(PATIENCE) else {
            let _ = child.kill();
            panic!("serve announced nothing in {PATIENCE:?}");
        };
        let host = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .filter(|_| line.contains("read-only"))
            .map(str::to_string);
        let mut server = Server {
            child,
            host: String::new(),
            stdout,
            stderr,
        };
        match host {
            Some(host) => server.host = host,
            None => {
                let stderr = server.stop_and_read_stderr();
                panic!("serve announced no URL: {line:?}\n{stderr}");
            }
        }
        server
    }

    /// `docker://HOST/NAME`, for skopeo.
    fn docker(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host)
    }

    /// Sends the signal Ctrl-C sends; returns the exit code and what the server printed on
    /// stdout and stderr after its announcement.
    fn interrupt(mut self) -> (Option<i32>, String, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        (status.code(), rest, self.stop_and_read_stderr())
    }

    /// Stops the server and returns everything it wrote to stderr.
    fn stop_and_read_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The drain thread ends when the pipe closes; give it a moment to get the last bytes.
        std::thread::sleep(Duration::from_millis(100));
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange, read to the end of the connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first error code of a distribution error body.
    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A raw request, so the test sees exactly what the server sent (no client-side redirects,
/// decompression or retries).
#[track_caller]
fn http(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "PUT" || method == "POST" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}{}",
        stdout_of(output),
        stderr_of(output)
    );
}

/// `image-transmit save --from SOURCE ARGS…` in `dir`; the meta file it announced.
#[track_caller]
fn save(dir: &Path, source: &TestRegistry, args: &[&str]) -> PathBuf {
    let output = image_transmit(dir)
        .args(["save", "--from", &source.url()])
        .args(args)
        .output()
        .unwrap();
    assert_success(&output);
    let stdout = stdout_of(&output);
    let path = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Create meta file: "))
        .unwrap_or_else(|| panic!("save announced no meta file:\n{stdout}"));
    let path = dir.join(path.trim());
    assert!(path.is_file(), "{}", path.display());
    path
}

/// `skopeo ARGS…` against a plain-HTTP server; its output, successful or not.
fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap()
}

/// The raw manifest skopeo reads from the server, and its digest.
#[track_caller]
fn skopeo_digest(server: &Server, reference: &str) -> String {
    let output = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &server.docker(reference),
    ]);
    assert_success(&output);
    testkit::sha256_digest(&output.stdout)
}

/// `skopeo copy --all` from the server into an OCI layout: skopeo checks every blob's digest
/// and size, so success means the whole image came through intact.
fn skopeo_copy(server: &Server, reference: &str, layout: &Path) -> Output {
    skopeo(&[
        "copy",
        "--all",
        "--quiet",
        "--src-tls-verify=false",
        &server.docker(reference),
        &format!("oci:{}", layout.display()),
    ])
}

#[test]
fn skopeo_and_our_copy_pull_images_and_indexes_from_a_served_bundle() {
    let source = TestRegistry::start();
    let base = Layer::random(101, 200_000);
    let docker = push_docker_image(
        &source,
        "team/app",
        "1",
        &[base.clone(), Layer::random(102, 30_000)],
    );
    let oci = push_oci_image(&source, "lib/tool", "2", &[Layer::random(103, 10_000)]);
    let index = push_oci_index(
        &source,
        "team/multi",
        "3",
        &[("linux", "amd64"), ("linux", "arm64")],
        &[base],
        20_000,
    );
    let dir = workdir();
    let meta = save(
        dir.path(),
        &source,
        &["team/app:1", "lib/tool:2", "team/multi:3"],
    );
    // The source is gone: everything below comes from the bundle.
    drop(source);
    let server = Server::start(dir.path(), &[&meta]);

    for image in [&docker, &oci, &index] {
        assert_eq!(
            skopeo_digest(&server, &format!("{}:{}", image.repository, image.tag)),
            image.digest,
            "{}",
            image.repository
        );
        // By digest too, as clients do after resolving a tag.
        assert_eq!(
            skopeo_digest(&server, &format!("{}@{}", image.repository, image.digest)),
            image.digest
        );
    }
    for child in &index.children {
        assert_eq!(
            skopeo_digest(&server, &format!("team/multi@{}", child.digest)),
            child.digest
        );
    }

    let layouts = workdir();
    for (reference, layout) in [
        ("team/multi:3", "multi"),
        ("team/app:1", "app"),
        ("lib/tool:2", "tool"),
    ] {
        let output = skopeo_copy(&server, reference, &layouts.path().join(layout));
        assert_success(&output);
    }

    let target = TestRegistry::start();
    let output = image_transmit(dir.path())
        .args(["copy", "--from", &format!("http://{}", server.host)])
        .args(["--to", &target.url()])
        .args(["team/app:1", "team/multi:3"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        served_digest(&target, "team/app", "1").as_deref(),
        Some(docker.digest.as_str())
    );
    assert_eq!(
        served_digest(&target, "team/multi", "3").as_deref(),
        Some(index.digest.as_str())
    );
    for child in &index.children {
        assert_eq!(
            served_digest(&target, "team/multi", &child.digest).as_deref(),
            Some(child.digest.as_str())
        );
    }
}

#[test]
fn the_distribution_api_answers_headers_ranges_listings_and_errors() {
    let source = TestRegistry::start();
    let layer = Layer::random(111, 50_000);
    let app = push_docker_image(&source, "team/app", "1", std::slice::from_ref(&layer));
    for tag in ["2", "3"] {
        push_docker_image(&source, "team/app", tag, std::slice::from_ref(&layer));
    }
    push_oci_image(&source, "lib/tool", "1", &[Layer::random(112, 1_000)]);
    let dir = workdir();
    let meta = save(
        dir.path(),
        &source,
        &["team/app:1", "team/app:2", "team/app:3", "lib/tool:1"],
    );
    let server = Server::start(dir.path(), &[&meta]);
    let host = server.host.as_str();

    let ping = http(host, "GET", "/v2/", &[]);
    assert_eq!(ping.status, 200);
    assert_eq!(
        ping.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );

    // Manifests: GET and HEAD give the same headers; HEAD no body.
    let get = http(host, "GET", "/v2/team/app/manifests/1", &[]);
    assert_eq!(get.status, 200);
    assert_eq!(get.body, app.manifest);
    assert_eq!(get.header("Content-Type"), Some(app.media_type.as_str()));
    assert_eq!(
        get.header("Docker-Content-Digest"),
        Some(app.digest.as_str())
    );
    let head = http(host, "HEAD", "/v2/team/app/manifests/1", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Docker-Content-Digest"),
        Some(app.digest.as_str())
    );
    assert_eq!(head.header("Content-Type"), Some(app.media_type.as_str()));
    let length = app.manifest.len().to_string();
    assert_eq!(head.header("Content-Length"), Some(length.as_str()));
    assert!(head.body.is_empty());
    let by_digest = http(
        host,
        "GET",
        &format!("/v2/team/app/manifests/{}", app.digest),
        &[],
    );
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.body, app.manifest);

    // Blobs: whole, HEAD, a range, a suffix range, past the end.
    let path = format!("/v2/team/app/blobs/{}", layer.digest());
    let whole = http(host, "GET", &path, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, layer.bytes());
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(whole.header("Docker-Content-Digest"), Some(layer.digest()));
    let head = http(host, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    let size = layer.bytes().len();
    assert_eq!(
        head.header("Content-Length"),
        Some(size.to_string().as_str())
    );
    assert!(head.body.is_empty());
    let part = http(host, "GET", &path, &[("Range", "bytes=1000-4999")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &layer.bytes()[1000..5000]);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 1000-4999/{size}").as_str())
    );
    assert_eq!(part.header("Content-Length"), Some("4000"));
    let tail = http(host, "GET", &path, &[("Range", "bytes=-10")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &layer.bytes()[size - 10..]);
    let open_ended = http(
        host,
        "GET",
        &path,
        &[("Range", &format!("bytes={}-", size - 3))],
    );
    assert_eq!(open_ended.status, 206);
    assert_eq!(open_ended.body, &layer.bytes()[size - 3..]);
    let past = http(host, "GET", &path, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("Content-Range"),
        Some(format!("bytes */{size}").as_str())
    );

    // Listings, paged with `n` and `last` and a `Link` to the next page.
    let tags = http(host, "GET", "/v2/team/app/tags/list", &[]);
    assert_eq!(tags.status, 200);
    assert_eq!(
        tags.json(),
        serde_json::json!({ "name": "team/app", "tags": ["1", "2", "3"] })
    );
    let first = http(host, "GET", "/v2/team/app/tags/list?n=2", &[]);
    assert_eq!(first.json()["tags"], serde_json::json!(["1", "2"]));
    assert_eq!(
        first.header("Link"),
        Some("</v2/team/app/tags/list?n=2&last=2>; rel=\"next\"")
    );
    let second = http(host, "GET", "/v2/team/app/tags/list?n=2&last=2", &[]);
    assert_eq!(second.json()["tags"], serde_json::json!(["3"]));
    assert_eq!(second.header("Link"), None);
    let catalog = http(host, "GET", "/v2/_catalog", &[]);
    assert_eq!(
        catalog.json(),
        serde_json::json!({ "repositories": ["lib/tool", "team/app"] })
    );
    let paged = http(host, "GET", "/v2/_catalog?n=1", &[]);
    assert_eq!(
        paged.json()["repositories"],
        serde_json::json!(["lib/tool"])
    );
    assert_eq!(
        paged.header("Link"),
        Some("</v2/_catalog?n=1&last=lib/tool>; rel=\"next\"")
    );
    let bad_n = http(host, "GET", "/v2/_catalog?n=many", &[]);
    assert_eq!(bad_n.status, 400);
    assert_eq!(bad_n.error_code(), "PAGINATION_NUMBER_INVALID");

    // Errors in the distribution shape.
    let missing_tag = http(host, "GET", "/v2/team/app/manifests/9", &[]);
    assert_eq!(missing_tag.status, 404);
    assert_eq!(missing_tag.error_code(), "MANIFEST_UNKNOWN");
    // A config blob is not a manifest, even though it is JSON with a `config` key.
    let config = app.blobs.iter().find(|b| *b != layer.digest()).unwrap();
    let config_as_manifest = http(
        host,
        "GET",
        &format!("/v2/team/app/manifests/{config}"),
        &[],
    );
    assert_eq!(config_as_manifest.status, 404);
    assert_eq!(config_as_manifest.error_code(), "MANIFEST_UNKNOWN");
    let unknown_name = http(host, "GET", "/v2/team/nope/manifests/1", &[]);
    assert_eq!(unknown_name.status, 404);
    assert_eq!(unknown_name.error_code(), "NAME_UNKNOWN");
    let unknown_tags = http(host, "GET", "/v2/team/nope/tags/list", &[]);
    assert_eq!(unknown_tags.error_code(), "NAME_UNKNOWN");
    let missing_blob = http(
        host,
        "GET",
        &format!("/v2/team/app/blobs/sha256:{}", "0".repeat(64)),
        &[],
    );
    assert_eq!(missing_blob.status, 404);
    assert_eq!(missing_blob.error_code(), "BLOB_UNKNOWN");
    let bad_digest = http(host, "GET", "/v2/team/app/blobs/sha256:xyz", &[]);
    assert_eq!(bad_digest.status, 400);
    assert_eq!(bad_digest.error_code(), "DIGEST_INVALID");
    for (method, path) in [
        ("PUT", "/v2/team/app/manifests/4"),
        ("DELETE", "/v2/team/app/manifests/1"),
        ("POST", "/v2/team/app/blobs/uploads/"),
        ("GET", "/v2/team/app/blobs/uploads/some-upload"),
    ] {
        let refused = http(host, method, path, &[]);
        assert_eq!(refused.status, 405, "{method} {path}");
        assert_eq!(refused.error_code(), "UNSUPPORTED", "{method} {path}");
        assert_eq!(
            refused.header("Docker-Distribution-API-Version"),
            Some("registry/2.0")
        );
    }
    // Still nothing written: the tag a PUT named does not exist.
    assert_eq!(
        http(host, "HEAD", "/v2/team/app/manifests/4", &[]).status,
        404
    );

    // Ctrl-C stops the server cleanly; requests were logged at debug level.
    let (code, stdout, stderr) = server.interrupt();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Stopped serving"), "{stdout}");
    assert!(
        stderr.contains("serve request") && stderr.contains("/v2/team/app/manifests/1"),
        "{stderr}"
    );
}

#[test]
fn a_base_and_its_increment_are_served_together() {
    let source = TestRegistry::start();
    let shared = Layer::random(121, 100_000);
    let old = push_docker_image(
        &source,
        "team/app",
        "1",
        &[shared.clone(), Layer::random(122, 10_000)],
    );
    let dir = workdir();
    let full = save(dir.path(), &source, &["team/app:1"]);
    let new = push_docker_image(
        &source,
        "team/app",
        "2",
        &[shared.clone(), Layer::random(123, 10_000)],
    );
    let other = push_oci_image(&source, "team/other", "1", &[Layer::random(124, 5_000)]);
    let increment = save(
        dir.path(),
        &source,
        &[
            "--incremental-from",
            full.to_str().unwrap(),
            "team/app:2",
            "team/other:1",
        ],
    );
    assert_ne!(full, increment);
    drop(source);

    let server = Server::start(dir.path(), &[&full, &increment]);
    assert_eq!(skopeo_digest(&server, "team/app:1"), old.digest);
    assert_eq!(skopeo_digest(&server, "team/app:2"), new.digest);
    assert_eq!(skopeo_digest(&server, "team/other:1"), other.digest);
    let layouts = workdir();
    // team/app:2 needs the shared layer from the base and its own from the increment.
    for reference in ["team/app:1", "team/app:2", "team/other:1"] {
        let layout = layouts.path().join(reference.replace([':', '/'], "-"));
        assert_success(&skopeo_copy(&server, reference, &layout));
    }
    let tags = http(&server.host, "GET", "/v2/team/app/tags/list", &[]);
    assert_eq!(tags.json()["tags"], serde_json::json!(["1", "2"]));
    let catalog = http(&server.host, "GET", "/v2/_catalog", &[]);
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["team/app", "team/other"])
    );
    drop(server);

    // The increment alone says up front that it lacks its base, and the pull then fails on
    // the missing blob instead of getting anything wrong.
    let alone = Server::start(dir.path(), &[&increment]);
    assert_eq!(skopeo_digest(&alone, "team/app:2"), new.digest);
    let shared_blob = http(
        &alone.host,
        "HEAD",
        &format!("/v2/team/app/blobs/{}", shared.digest()),
        &[],
    );
    assert_eq!(shared_blob.status, 404);
    let failed = skopeo_copy(&alone, "team/app:2", &layouts.path().join("alone"));
    assert!(!failed.status.success());
    let mut alone = alone;
    let stderr = alone.stop_and_read_stderr();
    assert!(
        stderr.contains("base bundles that are not served"),
        "{stderr}"
    );
}

#[test]
fn a_bad_listen_address_or_bundle_is_refused() {
    let dir = workdir();
    let output = image_transmit(dir.path())
        .args(["serve", "missing_meta.yaml", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("missing_meta.yaml"),
        "{}",
        stderr_of(&output)
    );

    let output = image_transmit(dir.path()).arg("serve").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));

    let source = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(131, 1_000)]);
    let meta = save(dir.path(), &source, &["team/app:1"]);
    let output = image_transmit(dir.path())
        .arg("serve")
        .arg(&meta)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("Cannot listen on not-an-address"),
        "{}",
        stderr_of(&output)
    );
}

/// Clients that open connections and never finish a request (300 of them, more than a
/// 256-descriptor process could hold) neither exhaust the server nor keep it from answering
/// once their time is up: it holds at most its connection limit, closes each silent one after
/// 10 s (the queue of 300 is through in three rounds), and closes a keep-alive connection left
/// idle as well.
#[cfg(target_os = "linux")]
#[test]
fn silent_and_idle_connections_are_limited_and_closed() {
    let dir = workdir();
    let source = TestRegistry::start();
    push_oci_image(&source, "team/app", "1", &[Layer::random(77_001, 1_000)]);
    let meta = save(dir.path(), &source, &["team/app:1"]);
    let server = Server::start(dir.path(), &[&meta]);
    let descriptors = || {
        fs_err::read_dir(format!("/proc/{}/fd", server.child.id()))
            .unwrap()
            .count()
    };
    let before = descriptors();

    // A keep-alive connection after one whole request, then left idle.
    let mut idle = TcpStream::connect(&server.host).unwrap();
    idle.write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", server.host).as_bytes())
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");

    let started = Instant::now();
    let silent: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.host).unwrap();
            stream
                .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let held = descriptors();
    assert!(
        held <= before + 130,
        "{before} descriptors before, {held} with 300 silent clients"
    );

    // Served once the silent ones ahead of it are dropped.
    let reply = http(&server.host, "GET", "/v2/", &[]);
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );

    // The first silent connections were closed by the server, not left open.
    for mut stream in silent.into_iter().take(50) {
        stream
            .set_read_timeout(Some(Duration::from_secs(40)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest).is_ok();
        assert!(closed, "a silent connection was left open");
    }
    let mut rest = Vec::new();
    assert!(
        idle.read_to_end(&mut rest).is_ok(),
        "the idle connection was left open"
    );
}
