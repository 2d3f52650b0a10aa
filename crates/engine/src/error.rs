//! The engine's errors: what went wrong with one image, typed so front ends can explain it in
//! the user's language and so the engine knows whether a retry can help.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::Error),

    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),

    #[error(transparent)]
    Meta(#[from] crate::bundle::meta::MetaError),

    #[error(transparent)]
    WatchLine(#[from] crate::watch::WatchLineError),

    #[error(transparent)]
    Part(#[from] crate::bundle::parts::PartError),

    #[error(transparent)]
    Squashfs(Box<crate::bundle::squashfs::SquashfsError>),

    #[error("blob {digest} in {origin} is damaged: {error}")]
    DamagedBlob {
        digest: registry::Digest,
        origin: String,
        error: Box<registry::Error>,
    },

    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Nothing moved for `seconds` during a blob transfer; `side` stopped (`origin` is its
    /// [`describe`](crate::transport::ImageSource::describe)).
    #[error("{origin} moved nothing for {seconds} s while transferring blob {digest} ({side:?})")]
    Stalled {
        side: crate::StallSide,
        origin: String,
        digest: registry::Digest,
        seconds: u64,
    },

    #[error("stopped by the user")]
    Cancelled,

    /// `oci:DIR` names a directory that holds files but is no OCI image layout.
    #[error("{path} holds other files and is not an OCI image layout; nothing is written into it")]
    NotALayout { path: String },

    #[error("cannot reach the container engine at {address}: {detail}")]
    EngineUnreachable { address: String, detail: String },

    #[error("the container engine at {address} answered {detail}")]
    EngineFailed { address: String, detail: String },

    #[error("{engine} refused to load {name}: {message}")]
    LoadRejected {
        engine: String,
        name: String,
        message: String,
    },

    #[error("no platform of {reference} matches {wanted}; it has {available}")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Registry(error) => error.is_retryable(),
            Error::Stalled { .. } => true,
            Error::Plan(_)
            | Error::Meta(_)
            | Error::Part(_)
            | Error::Squashfs(_)
            | Error::WatchLine(_)
            | Error::Io { .. }
            | Error::DamagedBlob { .. }
            | Error::Cancelled
            | Error::NotALayout { .. }
            | Error::EngineUnreachable { .. }
            | Error::EngineFailed { .. }
            | Error::LoadRejected { .. }
            | Error::NoMatchingPlatform { .. } => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Boxed: a squashfs problem carries a path and an entry name, too large to pass by value in
/// every `Result` of the engine.
impl From<crate::bundle::squashfs::SquashfsError> for Error {
    fn from(error: crate::bundle::squashfs::SquashfsError) -> Error {
        Error::Squashfs(Box::new(error))
    }
}
