//! `wan-proxy`: a TCP proxy that makes a loopback or veth link look like a long one, for
//! `bench/wan.sh`. Every byte is held for `--delay-ms` in each direction (so a round trip costs
//! twice that) without limiting throughput: bytes are read as fast as they come and written
//! once their time is up. With `--cut-after BYTES`, each connection is closed once that many
//! bytes have passed it in either direction, as proxies and firewalls that end long
//! connections do. Bandwidth is left to `tc` on the link behind it.
//!
//! `--stats FILE` receives `UP DOWN CONNECTIONS` (bytes client to server, server to client,
//! connections accepted) ten times a second, for the benchmark to read after a run.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read per step, and steps that may wait in one direction: enough for far more than
/// a 1 Gbit/s link's bytes in flight over 100 ms.
const STEP: usize = 64 * 1024;
const QUEUE: usize = 512;

struct Totals {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
}

struct Settings {
    upstream: String,
    delay: Duration,
    cut_after: Option<u64>,
}

fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut upstream = None;
    let mut delay = Duration::ZERO;
    let mut cut_after = None;
    let mut stats = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--listen" => listen = value(),
            "--upstream" => upstream = Some(value()),
            "--delay-ms" => delay = Duration::from_millis(number(&value())),
            "--cut-after" => cut_after = Some(number(&value())),
            "--stats" => stats = Some(value()),
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let settings = Arc::new(Settings {
        upstream: upstream.unwrap_or_else(|| fail("--upstream HOST:PORT is required")),
        delay,
        cut_after,
    });
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| fail(&format!("{listen}: {e}")));
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The port chosen, for the script that started the proxy.
    let _ = writeln!(std::io::stdout(), "{address}");
    let _ = std::io::stdout().flush();
    let totals = Arc::new(Totals {
        up: AtomicU64::new(0),
        down: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    });
    if let Some(path) = stats {
        let totals = Arc::clone(&totals);
        thread::spawn(move || {
            loop {
                let line = format!(
                    "{} {} {}\n",
                    totals.up.load(Ordering::Relaxed),
                    totals.down.load(Ordering::Relaxed),
                    totals.connections.load(Ordering::Relaxed)
                );
                // Written aside and renamed, so a reader never sees half a line.
                let aside = format!("{path}.new");
                if std::fs::write(&aside, line).is_ok() {
                    let _ = std::fs::rename(&aside, &path);
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
    }
    for client in listener.incoming().flatten() {
        totals.connections.fetch_add(1, Ordering::Relaxed);
        let settings = Arc::clone(&settings);
        let totals = Arc::clone(&totals);
        thread::spawn(move || serve(client, &settings, &totals));
    }
}

fn serve(client: TcpStream, settings: &Settings, totals: &Arc<Totals>) {
    let Ok(server) = TcpStream::connect(&settings.upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Bytes this connection has carried, both ways, for the cut.
    let carried = Arc::new(AtomicU64::new(0));
    let pumps = [
        (client.try_clone(), server.try_clone(), true),
        (server.try_clone(), client.try_clone(), false),
    ];
    let mut threads = Vec::new();
    for (from, to, up) in pumps {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let (sender, receiver) = sync_channel(QUEUE);
        let ends = [client.try_clone(), server.try_clone()];
        let carried = Arc::clone(&carried);
        let cut_after = settings.cut_after;
        let delay = settings.delay;
        let totals = Arc::clone(totals);
        threads.push(thread::spawn(move || {
            read_side(from, &sender, &carried, cut_after, delay);
        }));
        threads.push(thread::spawn(move || {
            if write_side(&to, &receiver, &totals, up) == End::Cut {
                // Cut, or a side failed: close both ways so the other pump ends too.
                for end in ends.into_iter().flatten() {
                    let _ = end.shutdown(Shutdown::Both);
                }
            } else {
                // The reading side closed: pass the end of its stream on, nothing more.
                let _ = to.shutdown(Shutdown::Write);
            }
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
}

/// Reads from `from` and queues each piece with the moment it may be written.
fn read_side(
    mut from: TcpStream,
    queue: &SyncSender<(Instant, Vec<u8>)>,
    carried: &AtomicU64,
    cut_after: Option<u64>,
    delay: Duration,
) {
    let mut buffer = vec![0; STEP];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let before = carried.fetch_add(read as u64, Ordering::Relaxed);
        let (keep, cut) = match cut_after {
            Some(limit) if before + read as u64 >= limit => {
                (limit.saturating_sub(before) as usize, true)
            }
            _ => (read, false),
        };
        if keep > 0
            && queue
                .send((Instant::now() + delay, buffer[..keep].to_vec()))
                .is_err()
        {
            return;
        }
        if cut {
            // An empty piece tells the writer to end the connection once what came before it
            // has gone out.
            let _ = queue.send((Instant::now() + delay, Vec::new()));
            return;
        }
    }
}

#[derive(PartialEq)]
enum End {
    /// The reading side reached its end.
    Closed,
    /// The connection was cut, or writing failed.
    Cut,
}

/// Writes each queued piece once its moment has come.
fn write_side(
    mut to: &TcpStream,
    queue: &Receiver<(Instant, Vec<u8>)>,
    totals: &Totals,
    up: bool,
) -> End {
    while let Ok((due, piece)) = queue.recv() {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if piece.is_empty() || to.write_all(&piece).is_err() {
            return End::Cut;
        }
        let counter = if up { &totals.up } else { &totals.down };
        counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
    End::Closed
}

fn number(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| fail(&format!("{text} is not a number")))
}

fn fail(message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "wan-proxy: {message}");
    std::process::exit(2);
}
