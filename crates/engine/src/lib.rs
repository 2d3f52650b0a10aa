//! The image-transmit engine: copies images from an [`transport::ImageSource`] to an
//! [`transport::ImageDestination`], whatever they are, and tells [`events::Observer`]s what it
//! does. Saving, uploading, loading and direct copy are all this one job.

pub mod bundle;
pub mod cache;
mod checked_stream;
pub mod copy;
pub mod error;
pub mod events;
pub mod plan;
pub mod precheck;
pub mod rate;
pub mod sample;
mod stall;
pub mod transport;
pub mod watch;

pub use copy::{CopyJob, CopyOptions, ImageReport, ImageStatus, JobReport, PlatformFilter, Sink};
pub use error::{Error, Result};
pub use events::{BlobOutcome, Event, ImageId, Observer, Observers};
pub use stall::StallSide;

/// A mutex's guard, even after a panic elsewhere poisoned it: the engine's shared state stays
/// usable (each holder leaves it consistent between statements).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
