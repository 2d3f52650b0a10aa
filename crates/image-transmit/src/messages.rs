//! Turns engine and registry errors into one sentence in the user's language. The engine's
//! errors are typed precisely so this file can explain each kind; anything not listed falls
//! back to the error's own (English) text.

use engine::Error;
use rust_i18n::t;

/// One sentence explaining an error, in the current language.
pub(crate) fn explain(error: &Error) -> String {
    match error {
        Error::Registry(error) => explain_registry(error),
        Error::Cancelled => t!("error.interrupted").to_string(),
        Error::Plan(error) => {
            t!("error.invalid_list_entry", detail = error.to_string()).to_string()
        }
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
        Error::SharedBlobFailed(inner) => explain(inner),
        other => other.to_string(),
    }
}

pub(crate) fn explain_registry(error: &registry::Error) -> String {
    use registry::Error as E;
    match error {
        E::ManifestNotFound { host, reference } => {
            t!("error.image_not_found", image = reference, registry = host).to_string()
        }
        E::Unauthorized { host } => t!("error.auth_failed", registry = host).to_string(),
        E::AuthenticationRequired { host } => {
            t!("error.auth_required", registry = host).to_string()
        }
        E::Denied { host, repository } => t!(
            "error.access_denied",
            registry = host,
            repository = repository
        )
        .to_string(),
        E::TlsVerification { host, detail } => {
            t!("error.tls_verify_failed", registry = host, detail = detail).to_string()
        }
        E::Unreachable { host, detail } => t!(
            "error.registry_unreachable",
            registry = host,
            detail = detail
        )
        .to_string(),
        E::Schema1 { reference } => t!("error.schema1_refused", image = reference).to_string(),
        E::DigestMismatch {
            expected, actual, ..
        } => t!(
            "error.digest_mismatch",
            what = expected.short(),
            expected = expected,
            actual = actual
        )
        .to_string(),
        E::CaCertificate { path, detail } => {
            t!("error.ca_certificate", path = path, detail = detail).to_string()
        }
        E::InvalidAddress { address, reason } => t!(
            "error.invalid_registry_url",
            value = address,
            detail = reason
        )
        .to_string(),
        other => other.to_string(),
    }
}
