//! How secrets in the config are shown in `Debug` output: as `***`, and URLs as their origin
//! only. Separate because registry entries and robots share it, and so that one test can check
//! that no secret of any kind ever shows.

use std::fmt;

pub(super) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A URL shown as `scheme://host[:port]/***`: enough to tell endpoints apart, without the
/// credentials that user info, path or query may hold.
pub(super) struct Origin<'a>(pub(super) &'a str);

impl fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}/***\"", url_origin(self.0))
    }
}

/// `scheme://host[:port]` of `url`, user info dropped; the text before any `/` when it has no
/// scheme.
fn url_origin(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(index) => url.split_at(index + 3),
        None => ("", url),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryEntry;
    use crate::config::tests::parse;

    #[test]
    fn url_origin_keeps_scheme_and_host_only() {
        assert_eq!(
            url_origin("https://h.example:8443/a/b?c#d"),
            "https://h.example:8443"
        );
        assert_eq!(url_origin("http://user:pw@h/x"), "http://h");
        assert_eq!(url_origin("h.example/x"), "h.example");
        assert_eq!(url_origin("https://h?token=1"), "https://h");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = parse(
            "source:\n- name: a\n  registry: r\n  user: u\n  password: hunter2\ndingtalk:\n- token: tok123\n  secret: sec456\n  url: https://u1:pw1@ding.example/p1?q=1\nwecom:\n- key: key789\n  url: http://wecom.example:81/p2\nfeishu:\n- token: ftok1\n  secret: fsec2\nwebhook:\n- url: https://hooks.example/p3/abc?x=sig4\n  headers:\n    Authorization: Bearer hv5\n",
        )
        .config;
        let debug = format!("{config:?}");
        assert!(debug.contains(r#"password: Some("***")"#), "{debug}");
        assert!(debug.contains(r#""https://ding.example/***""#), "{debug}");
        assert!(
            debug.contains(r#""http://wecom.example:81/***""#),
            "{debug}"
        );
        assert!(debug.contains(r#"headers: ["Authorization"]"#), "{debug}");
        for secret in [
            "hunter2", "tok123", "sec456", "u1", "pw1", "p1", "key789", "p2", "ftok1", "fsec2",
            "p3", "sig4", "hv5",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let no_password = RegistryEntry::default();
        assert!(format!("{no_password:?}").contains("password: None"));
    }
}
