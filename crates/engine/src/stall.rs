//! Stall detection for one blob transfer. A connection can stay open while nothing moves (a
//! source that stops sending, a target that stops reading or never answers): the transfer is
//! abandoned once no byte has moved for the configured time, and the error says which side
//! stopped. The HTTP client's own read timeout is only a backstop behind this, because it
//! cannot tell a source that stopped sending from a target that stopped answering.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which end of a transfer stopped moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallSide {
    /// The blob's bytes stopped arriving.
    Source,
    /// The destination stopped taking bytes, or never answered after the last one.
    Destination,
}

/// What a transfer last did, updated as bytes flow and read by its watchdog.
#[derive(Debug)]
pub(crate) struct Liveness {
    started: Instant,
    /// Milliseconds after `started` of the last sign of progress.
    last_progress: AtomicU64,
    /// Whether the transfer is waiting for the source's next bytes (rather than for the
    /// destination to take or acknowledge them).
    waiting_for_source: AtomicBool,
}

impl Liveness {
    /// A transfer about to ask its source for the blob.
    pub(crate) fn new() -> Liveness {
        Liveness {
            started: Instant::now(),
            last_progress: AtomicU64::new(0),
            waiting_for_source: AtomicBool::new(true),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes moved (or a step ended): the stall clock starts again.
    pub(crate) fn progressed(&self) {
        self.last_progress.store(self.now(), Ordering::Relaxed);
    }

    /// Whether the next move is the source's (`true`) or the destination's.
    pub(crate) fn waiting_for_source(&self, waiting: bool) {
        self.waiting_for_source.store(waiting, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`, with the side that was to move next.
    pub(crate) async fn stalled(&self, limit: Duration) -> StallSide {
        // Checked a few times per limit: a stall is noticed within a quarter of it.
        let check_every = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            tokio::time::sleep(check_every).await;
            let idle = self
                .now()
                .saturating_sub(self.last_progress.load(Ordering::Relaxed));
            if idle >= limit_ms {
                return if self.waiting_for_source.load(Ordering::Relaxed) {
                    StallSide::Source
                } else {
                    StallSide::Destination
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quiet_source_is_blamed_and_progress_resets_the_clock() {
        let liveness = Liveness::new();
        assert_eq!(
            liveness.stalled(Duration::from_millis(100)).await,
            StallSide::Source
        );
        liveness.waiting_for_source(false);
        liveness.progressed();
        let waited = Instant::now();
        assert_eq!(
            liveness.stalled(Duration::from_millis(200)).await,
            StallSide::Destination
        );
        assert!(waited.elapsed() >= Duration::from_millis(200));
    }
}
