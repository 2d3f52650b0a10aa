//! A TCP relay in front of a real registry that counts the connections it carries, telling TLS
//! handshakes from plain text by their first byte.
//!
//! [`FaultProxy`](crate::proxy::FaultProxy) reads HTTP, so it never sees a TLS hello that a
//! plain-HTTP registry turns away; this relay passes bytes through untouched and sees every
//! connection. It listens on an address of this machine that is not loopback, so a client
//! meets the registry as it would one on the LAN (`10.45.80.1:5000`), not as `127.0.0.1`,
//! which clients treat specially.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Long enough for a large blob on a loaded machine, short enough that a wedged peer ends the
/// connection's threads instead of leaking them for the rest of the test run.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The first byte of every TLS connection: the record type of the client's handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// A running relay; dropping it stops accepting and closes every connection it carries.
pub struct CountingRelay {
    listening: SocketAddr,
    host: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    stopping: AtomicBool,
    tls: AtomicUsize,
    plain: AtomicUsize,
    /// Both ends of every relayed connection, shut down when the relay stops.
    streams: Mutex<Vec<TcpStream>>,
}

impl CountingRelay {
    /// Starts a relay to `upstream` (`host:port`) on a free port of [`lan_address`].
    #[track_caller]
    pub fn start(upstream: &str) -> CountingRelay {
        let (bind, advertised) = lan_address();
        // Binding port 0 keeps the port: no race with other tests, unlike `free_port`.
        let listener = TcpListener::bind((bind, 0))
            .unwrap_or_else(|err| panic!("cannot listen on {bind}: {err}"));
        let listening = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            stopping: AtomicBool::new(false),
            tls: AtomicUsize::new(0),
            plain: AtomicUsize::new(0),
            streams: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("counting-relay-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .unwrap()
        };
        CountingRelay {
            listening,
            host: SocketAddr::new(advertised, listening.port()).to_string(),
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `ADDRESS:PORT` without a scheme, as cfg.yaml may name a registry.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Connections so far that opened with a TLS handshake.
    pub fn tls_connections(&self) -> usize {
        self.shared.tls.load(Ordering::SeqCst)
    }

    /// Connections so far that opened with anything else: plain HTTP.
    pub fn plain_connections(&self) -> usize {
        self.shared.plain.load(Ordering::SeqCst)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor blocked in accept(); it sees `stopping` and returns.
        let _ = TcpStream::connect(self.listening);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in lock(&self.shared.streams).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Where to listen, and the address clients are to use: this machine's address on its default
/// route when it has one. A machine without a network gets loopback written as the IPv4-mapped
/// `[::ffff:127.0.0.1]`, which reaches the same listener but which is not a loopback name to
/// Docker or to image-transmit, and so still takes the path a LAN address takes.
fn lan_address() -> (IpAddr, IpAddr) {
    // Connecting a UDP socket sends nothing; it only picks the route and with it the source
    // address. 203.0.113.0/24 is reserved for documentation: any default route covers it.
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| {
            socket.connect((Ipv4Addr::new(203, 0, 113, 1), 9))?;
            socket.local_addr()
        })
        .map(|address| address.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    match routed {
        Some(ip) => (ip, ip),
        None => (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        ),
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let shared = Arc::clone(shared);
        thread::spawn(move || {
            // A connection that fails here fails the client's request, which the test sees.
            let _ = relay(client, &shared);
        });
    }
}

/// Counts the connection by its first byte, then copies bytes both ways until both ends close.
fn relay(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut first = [0u8; 1];
    if client.read(&mut first)? == 0 {
        return Ok(());
    }
    let counter = if first[0] == TLS_HANDSHAKE {
        &shared.tls
    } else {
        &shared.plain
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let mut upstream = TcpStream::connect(&shared.upstream)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.write_all(&first)?;
    {
        let mut streams = lock(&shared.streams);
        streams.push(client.try_clone()?);
        streams.push(upstream.try_clone()?);
    }
    let replies = {
        let (mut from, mut to) = (upstream.try_clone()?, client.try_clone()?);
        thread::spawn(move || copy_then_close(&mut from, &mut to))
    };
    copy_then_close(&mut client, &mut upstream);
    let _ = replies.join();
    Ok(())
}

/// Copies until `from` ends, then tells `to` that nothing more comes.
fn copy_then_close(from: &mut TcpStream, to: &mut TcpStream) {
    let _ = io::copy(from, to);
    let _ = to.shutdown(Shutdown::Write);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
