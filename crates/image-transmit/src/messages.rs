//! Turns engine and registry errors into one sentence in the user's language. The matches are
//! exhaustive on purpose: a new error kind does not compile until it has its sentence in both
//! catalogs.

use engine::bundle::meta::MetaError;
use engine::plan::PlanError;
use engine::{Error, StallSide};
use registry::reference::ReferenceProblem;
use rust_i18n::t;

use crate::status_format::format_bytes;

/// Why `subject` (a list line or an image, printed just before) is invalid or failed, without
/// naming it a second time where the plain explanation would.
pub(crate) fn explain_for(subject: &str, error: &Error) -> String {
    match error {
        Error::Plan(PlanError::Reference(invalid)) if subject.contains(&invalid.text) => {
            explain_reference(&invalid.problem)
        }
        Error::Registry(registry::Error::ManifestNotFound { host, .. }) => {
            t!("error.not_on_source", registry = host).to_string()
        }
        other => explain(other),
    }
}

/// One sentence explaining an error, in the current language.
pub(crate) fn explain(error: &Error) -> String {
    match error {
        Error::Registry(error) => explain_registry(error),
        Error::Plan(error) => explain_plan(error),
        Error::WatchLine(error) => explain_watch_line(error),
        Error::Meta(MetaError::TooLarge { path, bytes, limit }) => t!(
            "error.meta_too_large",
            path = path.display(),
            size = format_bytes(*bytes),
            limit = format_bytes(*limit)
        )
        .to_string(),
        Error::Meta(error) => t!("error.bundle_meta", detail = error.to_string()).to_string(),
        Error::Part(error) => explain_part(error),
        Error::Squashfs(error) => explain_squashfs(error),
        Error::DamagedBlob {
            digest,
            origin,
            error,
        } => t!(
            "error.damaged_blob",
            digest = digest.short(),
            origin = origin,
            detail = explain_registry(error)
        )
        .to_string(),
        Error::Stalled {
            side,
            origin,
            digest,
            seconds,
        } => {
            let key = match side {
                StallSide::Source => "error.stalled_source",
                StallSide::Destination => "error.stalled_destination",
            };
            t!(
                key,
                origin = origin,
                digest = digest.short(),
                seconds = seconds
            )
            .to_string()
        }
        Error::Cancelled => t!("error.interrupted").to_string(),
        Error::NotALayout { path } => t!("error.not_a_layout", path = path).to_string(),
        Error::Io { path, source } => {
            t!("error.io", path = path, detail = source.to_string()).to_string()
        }
        Error::EngineUnreachable { address, detail } => t!(
            "error.engine_unreachable",
            address = address,
            detail = detail
        )
        .to_string(),
        Error::EngineFailed { address, detail } => {
            t!("error.engine_failed", address = address, detail = detail).to_string()
        }
        Error::LoadRejected {
            engine,
            name,
            message,
        } => t!(
            "error.load_rejected",
            engine = engine,
            image = name,
            detail = message
        )
        .to_string(),
        Error::NoMatchingPlatform {
            reference,
            wanted,
            available,
        } => t!(
            "error.no_matching_platform",
            image = reference,
            wanted = wanted,
            available = available
        )
        .to_string(),
    }
}

fn explain_watch_line(error: &engine::watch::WatchLineError) -> String {
    use engine::watch::WatchLineError;
    match error {
        WatchLineError::Plan(error) => explain_plan(error),
        WatchLineError::Digest(digest) => t!("error.watch_digest", digest = digest).to_string(),
        WatchLineError::Pattern {
            option,
            pattern,
            detail,
        } => t!(
            "error.watch_pattern",
            option = option,
            pattern = pattern,
            detail = detail
        )
        .to_string(),
        WatchLineError::Range { range, detail } => {
            t!("error.watch_range", range = range, detail = detail).to_string()
        }
        WatchLineError::UnknownOption(option) => {
            t!("error.watch_option", option = option).to_string()
        }
    }
}

/// A squashfs bundle that cannot be read back into blobs.
pub(crate) fn explain_squashfs(error: &engine::bundle::squashfs::SquashfsError) -> String {
    t!("error.squashfs", detail = error.to_string()).to_string()
}

/// One line per image whose manifest digest changed in reading a squashfs bundle.
pub(crate) fn rewritten_images(images: &[engine::bundle::squashfs::RewrittenImage]) -> Vec<String> {
    use engine::bundle::squashfs::RewriteReason;
    images
        .iter()
        .map(|rewritten| {
            let (image, old, new) = (&rewritten.image, &rewritten.old, &rewritten.new);
            match rewritten.reason {
                RewriteReason::LayersRecompressed => t!(
                    "squashfs.layers_recompressed",
                    image = image,
                    old = old,
                    new = new
                ),
                RewriteReason::ChildrenRewritten => {
                    t!(
                        "squashfs.children_rewritten",
                        image = image,
                        old = old,
                        new = new
                    )
                }
            }
            .to_string()
        })
        .collect()
}

/// A problem with a bundle's data file.
pub(crate) fn explain_part(error: &engine::bundle::parts::PartError) -> String {
    use engine::bundle::parts::PartError as E;
    match error {
        E::Missing { file, path } => {
            t!("part.missing", file = file, path = path.display()).to_string()
        }
        E::SizeMismatch {
            file,
            expected,
            actual,
        } => t!(
            "part.size_mismatch",
            file = file,
            expected = expected,
            actual = actual
        )
        .to_string(),
        E::Truncated { file, .. } => t!("part.truncated", file = file).to_string(),
        E::Corrupt { file, detail } => t!("part.corrupt", file = file, detail = detail).to_string(),
        E::UnsafeEntry { file, name, .. } => {
            t!("part.unsafe_entry", file = file, name = name).to_string()
        }
        E::SymbolicLink { file } => t!("part.symbolic_link", file = file).to_string(),
        other => t!("error.bundle_part", detail = other.to_string()).to_string(),
    }
}

/// Whether the user asked (`-v`) for the underlying errors behind each sentence.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
}

/// The sentence, and with `-v` the library's own account of the failure after it.
fn with_detail(sentence: String, detail: &str) -> String {
    if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
        format!("{sentence} ({detail})")
    } else {
        sentence
    }
}

pub(crate) fn explain_registry(error: &registry::Error) -> String {
    use registry::Error as E;
    match error {
        E::InvalidAddress { address, reason } => t!(
            "error.invalid_registry_url",
            value = address,
            detail = reason
        )
        .to_string(),
        E::CaCertificate { path, detail } => {
            t!("error.ca_certificate", path = path, detail = detail).to_string()
        }
        E::Unreachable {
            host,
            failure,
            detail,
        } => {
            use registry::NetworkFailure as F;
            let key = match failure {
                F::Refused => "error.unreachable_refused",
                F::NameNotResolved => "error.unreachable_name",
                F::TimedOut => "error.unreachable_timeout",
                F::Reset => "error.unreachable_reset",
                // Nothing better to say than what the system said.
                F::Other => {
                    return t!(
                        "error.registry_unreachable",
                        registry = host,
                        detail = detail
                    )
                    .to_string();
                }
            };
            with_detail(t!(key, registry = host).to_string(), detail)
        }
        E::TlsVerification { host, detail } => with_detail(
            t!("error.tls_verify_failed", registry = host).to_string(),
            detail,
        ),
        E::Unauthorized { host } => t!("error.auth_failed", registry = host).to_string(),
        E::CredentialsWithheld { host, realm } => {
            t!("error.credentials_withheld", registry = host, realm = realm).to_string()
        }
        E::AuthenticationRequired { host } => {
            t!("error.auth_required", registry = host).to_string()
        }
        E::Denied { host, repository } => t!(
            "error.access_denied",
            registry = host,
            repository = repository
        )
        .to_string(),
        E::ManifestNotFound { host, reference } => {
            t!("error.image_not_found", image = reference, registry = host).to_string()
        }
        E::BlobNotFound {
            host,
            repository,
            digest,
        } => t!(
            "error.blob_not_found",
            digest = digest.short(),
            repository = repository,
            registry = host
        )
        .to_string(),
        E::NotFound { host, what } => {
            t!("error.not_found", what = what, registry = host).to_string()
        }
        E::Status {
            host,
            status,
            method,
            path,
            body,
        } => t!(
            "error.registry_status",
            registry = host,
            status = status,
            method = method,
            path = path,
            body = body
        )
        .to_string(),
        E::Transfer { host, detail } => {
            with_detail(t!("error.transfer", registry = host).to_string(), detail)
        }
        E::DigestMismatch {
            expected, actual, ..
        } => t!(
            "error.digest_mismatch",
            what = expected.short(),
            expected = expected,
            actual = actual
        )
        .to_string(),
        E::SizeMismatch {
            digest,
            expected,
            actual,
        } => t!(
            "error.size_mismatch",
            digest = digest.short(),
            expected = expected,
            actual = actual
        )
        .to_string(),
        E::Schema1 { reference } => t!("error.schema1_refused", image = reference).to_string(),
        E::UnsupportedManifest {
            reference,
            media_type,
        } => t!(
            "error.unsupported_manifest",
            image = reference,
            media_type = media_type
        )
        .to_string(),
        E::InvalidManifest { reference, detail } => {
            t!("error.invalid_manifest", image = reference, detail = detail).to_string()
        }
        E::AbsurdManifest {
            reference,
            count,
            limit,
            index,
        } => {
            let key = if *index {
                "error.absurd_index"
            } else {
                "error.absurd_manifest"
            };
            t!(key, image = reference, count = count, limit = limit).to_string()
        }
        E::Protocol { host, detail } => {
            t!("error.protocol", registry = host, detail = detail).to_string()
        }
        E::MonolithicUploadRefused { host } => {
            t!("error.monolithic_refused", registry = host).to_string()
        }
    }
}

/// Why an image-list line cannot be planned.
pub(crate) fn explain_plan(error: &PlanError) -> String {
    match error {
        PlanError::InvalidCharacters(found) => {
            let places: Vec<String> = found
                .iter()
                .map(|bad| {
                    t!(
                        "plan.bad_character",
                        line = bad.line,
                        code = format!("U+{:04X}", u32::from(bad.character))
                    )
                    .to_string()
                })
                .collect();
            t!("plan.invalid_characters", places = places.join(", ")).to_string()
        }
        PlanError::EmptyLine => t!("plan.empty_line").to_string(),
        PlanError::MissingSource => t!("plan.missing_source").to_string(),
        PlanError::MissingRename => t!("plan.missing_rename").to_string(),
        PlanError::MultipleRenames => t!("plan.multiple_renames").to_string(),
        PlanError::Reference(invalid) => t!(
            "plan.invalid_reference",
            text = invalid.text,
            problem = explain_reference(&invalid.problem)
        )
        .to_string(),
        PlanError::InvalidRepository {
            repository,
            problem,
        } => t!(
            "plan.invalid_repository",
            repository = repository,
            problem = explain_reference(problem)
        )
        .to_string(),
        PlanError::RenameChangesDigest(digest) => {
            t!("plan.rename_changes_digest", digest = digest).to_string()
        }
        PlanError::InvalidEndpoint { text, problem } => t!(
            "error.invalid_registry_url",
            value = text,
            detail = explain_reference(problem)
        )
        .to_string(),
    }
}

fn explain_reference(problem: &ReferenceProblem) -> String {
    match problem {
        ReferenceProblem::Empty => t!("reference.empty").to_string(),
        ReferenceProblem::MissingRepository => t!("reference.missing_repository").to_string(),
        ReferenceProblem::InvalidHost(host) => {
            t!("reference.invalid_host", host = host).to_string()
        }
        ReferenceProblem::Uppercase => t!("reference.uppercase").to_string(),
        ReferenceProblem::EmptyComponent => t!("reference.empty_component").to_string(),
        ReferenceProblem::InvalidComponent(component) => {
            t!("reference.invalid_component", component = component).to_string()
        }
        ReferenceProblem::MisplacedColon => t!("reference.misplaced_colon").to_string(),
        ReferenceProblem::NameTooLong(length) => {
            t!("reference.name_too_long", length = length).to_string()
        }
        ReferenceProblem::InvalidTag(tag) => t!("reference.invalid_tag", tag = tag).to_string(),
        ReferenceProblem::InvalidDigest(digest) => {
            t!("reference.invalid_digest", digest = digest).to_string()
        }
    }
}
