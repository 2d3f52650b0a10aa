//! A job's total bandwidth cap (`--limit-rate`): one token bucket that every blob transfer of
//! the job draws from, so ten parallel transfers share the rate rather than each getting it. A
//! jump host shares the customer's link; the cap keeps a night's copy from filling it.
//!
//! Applied to the bytes read from the source: in a copy they are the bytes sent on, so the
//! upload follows the same cap; an upload from a bundle reads from disk at the same pace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::transport::ByteStream;

/// At most this long of the rate may pass at once after a pause: a short burst smooths the
/// start of each chunk without letting an idle minute turn into a minute's worth at once.
const BURST: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct RateLimit {
    bytes_per_second: u64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may pass now; negative when transfers have run ahead and must wait.
    available: f64,
    updated: Instant,
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> Arc<RateLimit> {
        RateLimit::starting(bytes_per_second, Instant::now())
    }

    fn starting(bytes_per_second: u64, now: Instant) -> Arc<RateLimit> {
        Arc::new(RateLimit {
            bytes_per_second: bytes_per_second.max(1),
            bucket: Mutex::new(Bucket {
                available: 0.0,
                updated: now,
            }),
        })
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes `bytes` from the bucket at `now` and says how long their sender must wait first
    /// so that, over time, no more than the rate passes.
    fn reserve(&self, bytes: u64, now: Instant) -> Duration {
        let rate = self.bytes_per_second as f64;
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        let burst = rate * BURST.as_secs_f64();
        bucket.available = (bucket.available + elapsed * rate).min(burst);
        bucket.updated = now;
        bucket.available -= bytes as f64;
        if bucket.available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.available / rate)
        }
    }

    /// `stream`, each chunk held back until the job's rate lets it pass. Chunks are cut to a
    /// tenth of a second's worth first, so a low rate moves bytes often enough that the stall
    /// watchdog never takes a held-back transfer for a dead one.
    pub fn limit(self: &Arc<RateLimit>, stream: ByteStream) -> ByteStream {
        let limit = self.clone();
        let piece = (self.bytes_per_second / 10).max(1024) as usize;
        stream
            .flat_map(move |chunk| {
                let pieces: Vec<_> = match chunk {
                    Ok(mut bytes) => {
                        let mut pieces = Vec::new();
                        while bytes.len() > piece {
                            pieces.push(Ok(bytes.split_to(piece)));
                        }
                        pieces.push(Ok(bytes));
                        pieces
                    }
                    Err(error) => vec![Err(error)],
                };
                futures_util::stream::iter(pieces)
            })
            .then(move |chunk| {
                let limit = limit.clone();
                async move {
                    if let Ok(bytes) = &chunk {
                        let wait = limit.reserve(bytes.len() as u64, Instant::now());
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    chunk
                }
            })
            .boxed()
    }
}

/// `50M`, `512K`, `1.5G` or plain bytes, per second; binary units, as curl's `--limit-rate`.
pub fn parse_rate(text: &str) -> Option<u64> {
    let trimmed = text.trim();
    let amount = trimmed.strip_suffix("/s").unwrap_or(trimmed);
    // Below a kilobyte a second nothing useful moves; such a value is a mistake.
    parse_bytes(amount).filter(|&bytes| bytes >= 1024)
}

/// An amount of bytes as people write it: `4G`, `500M`, `1.5GiB`, `64K`, `8192`; binary units
/// (K = 1024), as file sizes and curl's rates are meant. Shared by `--limit-rate` and
/// `save --split-size`.
/// The smallest upload chunk a user may ask for: below it round trips would cost more than any
/// proxy's cut.
pub const SMALLEST_UPLOAD_CHUNK: u64 = 64 << 10;

/// An upload chunk size (`--chunk-size`, cfg `chunksize:`): an amount of bytes, at least
/// [`SMALLEST_UPLOAD_CHUNK`].
pub fn parse_chunk_size(text: &str) -> Option<u64> {
    parse_bytes(text).filter(|&bytes| bytes >= SMALLEST_UPLOAD_CHUNK)
}

pub fn parse_bytes(text: &str) -> Option<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    value
        .is_finite()
        .then_some((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_curl_reads_them() {
        assert_eq!(parse_rate("50M"), Some(50 << 20));
        assert_eq!(parse_rate("50MB/s"), Some(50 << 20));
        assert_eq!(parse_rate("512k"), Some(512 << 10));
        assert_eq!(parse_rate("1.5G"), Some(3 << 29));
        assert_eq!(parse_rate("4096"), Some(4096));
        for wrong in ["", "fast", "10X", "100", "-5M", "M"] {
            assert_eq!(parse_rate(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn a_steady_stream_is_held_to_the_rate() {
        let start = Instant::now();
        let limit = RateLimit::starting(1000, start);
        // The bucket starts empty: 500 bytes wait half a second, the next 500 one second.
        assert_eq!(limit.reserve(500, start), Duration::from_millis(500));
        assert_eq!(limit.reserve(500, start), Duration::from_secs(1));
        // Once that time has passed, the debt is paid and nothing more is owed.
        assert_eq!(
            limit.reserve(0, start + Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn an_idle_pause_earns_only_a_short_burst() {
        let start = Instant::now();
        let limit = RateLimit::starting(10_000, start);
        assert_eq!(limit.reserve(0, start), Duration::ZERO);
        // A minute idle earns 100 ms of the rate (1,000 bytes), not 600,000.
        let later = start + Duration::from_secs(60);
        assert_eq!(limit.reserve(1_000, later), Duration::ZERO);
        assert_eq!(limit.reserve(10_000, later), Duration::from_secs(1));
    }

    #[test]
    fn parallel_transfers_share_one_rate() {
        // Ten transfers of 1,000 bytes each at once: together they wait for 10,000 bytes.
        let start = Instant::now();
        let limit = RateLimit::starting(1000, start);
        let waits: Vec<Duration> = (0..10).map(|_| limit.reserve(1_000, start)).collect();
        assert_eq!(waits.last(), Some(&Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_limited_stream_takes_as_long_as_its_bytes_at_the_rate() {
        let chunks: Vec<Result<bytes::Bytes, registry::Error>> = (0..8)
            .map(|_| Ok(bytes::Bytes::from(vec![0u8; 64 << 10])))
            .collect();
        let limit = RateLimit::new(256 << 10);
        let started = Instant::now();
        let mut limited = limit.limit(futures_util::stream::iter(chunks).boxed());
        let (mut total, mut chunks_seen) = (0, 0);
        while let Some(chunk) = limited.next().await {
            total += chunk.unwrap().len();
            chunks_seen += 1;
        }
        assert_eq!(total, 512 << 10);
        assert!(
            chunks_seen > 8,
            "chunks are cut to a tenth of a second's worth"
        );
        // 512 KiB at 256 KiB/s: two seconds, the last chunk released at the end of them.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
