//! Real CNCF distribution registries (`docker-registry serve`) started for one test on a free
//! loopback port and killed when the test drops them.

use std::env;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::ClientConfig;
use serde_json::json;
use tempfile::TempDir;

use crate::http::Endpoint;
use crate::tls;
use crate::token::{TokenServer, TokenServerOptions};
use crate::tools::{require_tools, run};

/// distribution answers `/v2/` about 50 ms after start; this leaves room for a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at starting on a fresh port, for when another process takes the port between
/// [`free_port`] releasing it and the registry binding it.
const START_ATTEMPTS: usize = 3;

/// Response header carrying a per-registry token: readiness counts only when the answer comes
/// from this registry, not from whatever else may have grabbed the port meanwhile.
const INSTANCE_HEADER: &str = "X-Testkit-Instance";

/// How to configure a [`TestRegistry`]; the default is plain HTTP without authentication.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Require this user and password (htpasswd with a bcrypt entry, realm `test`).
    pub credentials: Option<(String, String)>,
    /// Serve HTTPS with a certificate for `127.0.0.1` and `localhost` signed by a test CA.
    pub tls: bool,
}

/// A running `docker-registry` process listening on `127.0.0.1` with its own temporary storage,
/// deletion enabled. Dropping it kills the process, waits for it and removes its files.
pub struct TestRegistry {
    process: Option<Child>,
    port: u16,
    credentials: Option<(String, String)>,
    /// The CA file sits alone in its directory because skopeo's `--cert-dir` takes any `*.key`
    /// there for a client key.
    ca_pem: Option<PathBuf>,
    endpoint: Endpoint,
    dir: TempDir,
}

impl TestRegistry {
    /// Starts a registry speaking plain HTTP without authentication.
    #[track_caller]
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(RegistryOptions::default())
    }

    /// Starts a plain-HTTP registry that requires `user` and `password` (HTTP Basic accepted).
    #[track_caller]
    pub fn start_with_auth(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start_with(RegistryOptions {
            credentials: Some((user.to_owned(), password.to_owned())),
            tls: false,
        })
    }

    /// Starts an HTTPS registry whose certificate is signed by a fresh test CA; see
    /// [`ca_pem`](Self::ca_pem).
    #[track_caller]
    pub fn start_tls() -> TestRegistry {
        TestRegistry::start_with(RegistryOptions {
            credentials: None,
            tls: true,
        })
    }

    /// Starts a registry as `options` describe, e.g. TLS and authentication together, and waits
    /// until it answers `/v2/`. Panics if the tools are missing or it does not come up.
    #[track_caller]
    pub fn start_with(options: RegistryOptions) -> TestRegistry {
        TestRegistry::start_configured(options, None)
    }

    /// Starts a plain-HTTP registry that accepts only bearer tokens, and the [`TokenServer`]
    /// (started with `token`) that issues them: distribution's `auth: token`, as on Docker Hub,
    /// Harbor or GitLab. The registry then verifies every token against the server's certificate.
    ///
    /// [`credentials`](Self::credentials) are the token server's user and password, so skopeo
    /// (and with it [`push_oci_image`](crate::push_oci_image), [`push_oci_index`](crate::push_oci_index),
    /// [`skopeo_inspect_raw`](crate::skopeo_inspect_raw)) works as for any registry. The helpers
    /// that speak the registry API themselves ([`push_docker_image`](crate::push_docker_image),
    /// [`registry_has_blob`]) send no token and get 401 here.
    #[track_caller]
    pub fn start_with_token_auth(token: TokenServerOptions) -> (TestRegistry, TokenServer) {
        let server = TokenServer::start(token);
        let registry = TestRegistry::start_configured(RegistryOptions::default(), Some(&server));
        (registry, server)
    }

    /// [`start_with`](Self::start_with), with token authentication by `token` if given.
    #[track_caller]
    fn start_configured(options: RegistryOptions, token: Option<&TokenServer>) -> TestRegistry {
        require_tools();
        let dir = tempfile::Builder::new()
            .prefix("testkit-registry-")
            .tempdir()
            .unwrap();
        let mut config = json!({
            "version": "0.1",
            "log": { "level": "warn", "accesslog": { "disabled": true } },
            "storage": {
                "filesystem": { "rootdirectory": dir.path().join("storage") },
                "delete": { "enabled": true },
            },
            "http": {},
        });

        let mut tls_client = None;
        let mut ca_pem = None;
        if options.tls {
            let certificates = tls::make_server_certificates(&dir.path().join("pki"));
            config["http"]["tls"] = json!({
                "certificate": certificates.certificate,
                "key": certificates.key,
            });
            let cert_dir = dir.path().join("certs.d");
            fs::create_dir(&cert_dir).unwrap();
            let ca = cert_dir.join("ca.crt");
            fs::copy(&certificates.ca, &ca).unwrap();
            tls_client = Some(tls::client_config(&ca));
            ca_pem = Some(ca);
        }
        if let Some((user, password)) = &options.credentials {
            let htpasswd = dir.path().join("htpasswd");
            // MD5 entries are refused by distribution; only bcrypt (-B) works.
            run(Command::new("htpasswd")
                .arg("-Bbc")
                .arg(&htpasswd)
                .args([user, password]));
            config["auth"] = json!({ "htpasswd": { "realm": "test", "path": htpasswd } });
        }
        let mut credentials = options.credentials.clone();
        if let Some(server) = token {
            config["auth"] = json!({ "token": {
                "realm": server.realm(),
                "service": server.service(),
                "issuer": server.issuer(),
                "rootcertbundle": server.certificate(),
            } });
            let (user, password) = server.credentials();
            credentials = Some((user.to_owned(), password.to_owned()));
        }

        let mut registry = TestRegistry {
            process: None,
            port: 0,
            endpoint: endpoint(tls_client, options.credentials.as_ref()),
            credentials,
            ca_pem,
            dir,
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match registry.launch(&mut config) {
                Ok(()) => return registry,
                Err(Launch::PortTaken(log)) => failures.push(log),
                Err(Launch::Failed(message)) => panic!("docker-registry did not start: {message}"),
            }
        }
        panic!(
            "docker-registry found no free port in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// The PEM file of the CA that signed a TLS registry's certificate; `None` for plain HTTP.
    ///
    /// The file is named `ca.crt` and is alone in its directory, so that directory is fit for
    /// skopeo's `--cert-dir` as it is.
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// The user and password the registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Kills the registry now, so tests can exercise an unreachable or vanished registry. Its
    /// port then refuses connections. Calling it again does nothing.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Both fail only if the process is already gone, which is the goal.
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The directory holding only [`ca_pem`](Self::ca_pem), for skopeo's `--cert-dir`.
    pub(crate) fn cert_dir(&self) -> Option<&Path> {
        self.ca_pem.as_deref().and_then(Path::parent)
    }

    /// Runs the registry on a fresh port with `config` and waits until it answers.
    fn launch(&mut self, config: &mut serde_json::Value) -> Result<(), Launch> {
        self.port = free_port();
        self.endpoint.host = self.host();
        let token = format!("{:016x}", fastrand::u64(..));
        config["http"]["addr"] = json!(self.endpoint.host);
        config["http"]["headers"] = json!({ INSTANCE_HEADER: [token] });
        // JSON is YAML, and serde_json quotes paths correctly.
        let config_path = self.dir.path().join("config.yml");
        fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let log_path = self.dir.path().join("registry.log");
        let log = File::create(&log_path).unwrap();

        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // distribution reads REGISTRY_* variables as config overrides: skopeo's REGISTRY_AUTH_FILE
        // alone makes it reject the configuration.
        for (name, _) in env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        let process = command
            .spawn()
            .map_err(|err| Launch::Failed(format!("cannot run docker-registry: {err}")))?;
        self.process = Some(process);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = self
                .process
                .as_mut()
                .and_then(|process| process.try_wait().unwrap());
            if let Some(status) = exited {
                self.process = None;
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(if log.contains("address already in use") {
                    Launch::PortTaken(log)
                } else {
                    Launch::Failed(format!("it exited with {status}:\n{log}"))
                });
            }
            if let Ok(response) = self.endpoint.send("GET", "/v2/", &[], &[])
                && matches!(response.status, 200 | 401)
                && response.header(INSTANCE_HEADER) == Some(token.as_str())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(Launch::Failed(format!(
                    "no answer on {} within {READY_TIMEOUT:?}:\n{log}",
                    self.url()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Launch {
    PortTaken(String),
    Failed(String),
}

/// How to reach the registry; `launch` fills in the host once it has a port.
fn endpoint(tls: Option<Arc<ClientConfig>>, credentials: Option<&(String, String)>) -> Endpoint {
    Endpoint {
        host: String::new(),
        tls,
        authorization: credentials.map(|(user, password)| {
            format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
        }),
    }
}

/// A port on `127.0.0.1` that was free a moment ago. Another process may take it before the
/// caller binds it; [`TestRegistry`] retries on a new port when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the registry has blob `digest` in `repository`, asked with `HEAD` over HTTP(S) with the
/// registry's credentials. Panics if the registry answers anything but 200 or 404.
#[track_caller]
pub fn registry_has_blob(reg: &TestRegistry, repository: &str, digest: &str) -> bool {
    let path = format!("/v2/{repository}/blobs/{digest}");
    let response = reg
        .endpoint()
        .send("HEAD", &path, &[], &[])
        .unwrap_or_else(|err| panic!("HEAD {}{path}: {err}", reg.url()));
    match response.status {
        200 => true,
        404 => false,
        status => panic!("HEAD {}{path}: unexpected status {status}", reg.url()),
    }
}
