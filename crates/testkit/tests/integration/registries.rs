//! Each kind of test registry starts with the access rules it promises and stops on request.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use testkit::{CountingRelay, RegistryOptions, TestRegistry};

/// The status line and headers of `GET /v2/` sent as plain HTTP, optionally with Basic auth.
fn get_v2_head(reg: &TestRegistry, credentials: Option<(&str, &str)>) -> String {
    let mut request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n", reg.host());
    if let Some((user, password)) = credentials {
        let token = BASE64.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(reg.host()).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or_default()
}

#[test]
fn plain_registry_answers_without_credentials() {
    let reg = TestRegistry::start();
    assert_eq!(reg.url(), format!("http://{}", reg.host()));
    assert!(reg.ca_pem().is_none() && reg.credentials().is_none());
    assert_eq!(status(&get_v2_head(&reg, None)), "200");
}

#[test]
fn auth_registry_accepts_only_its_basic_credentials() {
    let reg = TestRegistry::start_with_auth("alice", "s3cret");
    assert_eq!(reg.credentials(), Some(("alice", "s3cret")));

    let anonymous = get_v2_head(&reg, None);
    assert_eq!(status(&anonymous), "401");
    assert!(
        anonymous.contains(r#"Basic realm="test""#),
        "challenge: {anonymous}"
    );
    assert_eq!(status(&get_v2_head(&reg, Some(("alice", "wrong")))), "401");
    assert_eq!(status(&get_v2_head(&reg, Some(("alice", "s3cret")))), "200");
}

#[test]
fn tls_registry_certificate_verifies_against_its_ca_for_127_0_0_1() {
    let reg = TestRegistry::start_tls();
    assert_eq!(reg.url(), format!("https://{}", reg.host()));
    let ca = reg.ca_pem().expect("a TLS registry has a CA");
    let cert_dir: Vec<_> = std::fs::read_dir(ca.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(cert_dir, ["ca.crt"], "skopeo needs ca.crt alone");

    // openssl is independent of the rustls client testkit itself used to see the registry ready.
    let verified = Command::new("openssl")
        .args(["s_client", "-connect", &reg.host(), "-verify_return_error"])
        .args(["-verify_ip", "127.0.0.1", "-CAfile"])
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "openssl s_client: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        status(&get_v2_head(&reg, None)),
        "400",
        "plain HTTP refused"
    );
}

#[test]
fn tls_and_auth_combine() {
    let reg = TestRegistry::start_with(RegistryOptions {
        credentials: Some(("bob".to_owned(), "pw".to_owned())),
        tls: true,
    });
    assert!(reg.url().starts_with("https://"));
    assert_eq!(reg.credentials(), Some(("bob", "pw")));
    assert!(reg.ca_pem().is_some());
}

#[test]
fn stopped_registry_refuses_connections() {
    let mut reg = TestRegistry::start();
    assert!(TcpStream::connect(reg.host()).is_ok());
    reg.stop();
    assert!(TcpStream::connect(reg.host()).is_err());
    reg.stop();
}

#[test]
fn counting_relay_reaches_the_registry_at_a_non_loopback_address_and_counts_tls_hellos() {
    let reg = TestRegistry::start();
    let relay = CountingRelay::start(&reg.host());
    let address: SocketAddr = relay.host().parse().unwrap();
    assert!(!address.ip().is_loopback(), "{address}");

    let mut plain = TcpStream::connect(address).unwrap();
    plain
        .write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", relay.host()).as_bytes())
        .unwrap();
    let mut response = String::new();
    plain.read_to_string(&mut response).unwrap();
    assert_eq!(status(&response), "200", "{response}");

    // The start of a TLS handshake record, and nothing more.
    let mut hello = TcpStream::connect(address).unwrap();
    hello.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05]).unwrap();
    hello.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = hello.read_to_end(&mut answer);

    assert_eq!((relay.tls_connections(), relay.plain_connections()), (1, 1));
}
