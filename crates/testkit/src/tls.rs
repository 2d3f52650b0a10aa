//! A throwaway certificate authority and server certificate for a TLS test registry, made with
//! `openssl` so that the certificates come from the same tool real operators use.
//!
//! The server certificate is a leaf signed by a separate CA because rustls (and webpki) reject a
//! self-signed CA certificate presented as a server's own. Keys are ECDSA P-256, which every
//! client here accepts and which openssl makes in milliseconds where an RSA-2048 key takes about
//! half a second.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::tools::run;

/// `req` needs a config file for extensions; writing one keeps the result independent of the
/// system's `openssl.cnf`.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = subject
prompt = no

[subject]
CN = testkit

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

pub(crate) struct ServerCertificates {
    pub(crate) ca: PathBuf,
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
}

/// Arguments to `openssl req` for a new unencrypted ECDSA P-256 key.
const NEW_KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// Makes a CA and a server certificate for `127.0.0.1` and `localhost` in `dir`.
#[track_caller]
pub(crate) fn make_server_certificates(dir: &Path) -> ServerCertificates {
    fs::create_dir_all(dir).unwrap();
    let config = dir.join("openssl.cnf");
    fs::write(&config, OPENSSL_CONFIG).unwrap();
    let ca = dir.join("ca.crt");
    let ca_key = dir.join("ca.key");
    let request = dir.join("server.csr");
    let certificate = dir.join("server.crt");
    let key = dir.join("server.key");

    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "30"])
        .args(NEW_KEY)
        .args(["-subj", "/CN=test-ca", "-extensions", "ca", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .args(["req", "-new"])
        .args(NEW_KEY)
        .args(["-subj", "/CN=localhost", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&request));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-set_serial", "2"])
        .args(["-extensions", "server", "-extfile"])
        .arg(&config)
        .arg("-in")
        .arg(&request)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-out")
        .arg(&certificate));

    ServerCertificates {
        ca,
        certificate,
        key,
    }
}

/// A rustls client configuration that trusts only the CA in `ca_pem`.
#[track_caller]
pub(crate) fn client_config(ca_pem: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
