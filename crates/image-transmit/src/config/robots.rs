//! The notification entries of cfg.yaml: `dingtalk:`, `wecom:`, `feishu:` and `webhook:`.
//! Separate from the registries because they are credentials of another kind (and `notify`
//! is their only reader); their `Debug` never shows a token, secret or full address.

use std::collections::BTreeMap;
use std::fmt;

use super::redacted::{Origin, Redacted};

/// One `dingtalk:` robot.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct DingTalkRobot {
    pub(crate) token: String,
    pub(crate) secret: String,
    /// Endpoint instead of DingTalk's own (a proxy, or a test receiver); the token still goes
    /// in the query.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for DingTalkRobot {
    /// Both fields are credentials: the token alone lets anyone post to the group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DingTalkRobot")
            .field("token", &Redacted)
            .field("secret", &Redacted)
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `wecom:` group robot (WeCom, 企业微信).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct WeComRobot {
    pub(crate) key: String,
    /// Endpoint instead of WeCom's own; the key still goes in the query.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for WeComRobot {
    /// The key is the robot's only credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeComRobot")
            .field("key", &Redacted)
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `feishu:` custom bot (Feishu / Lark).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct FeishuRobot {
    /// The last part of the bot's webhook address.
    pub(crate) token: String,
    /// Set when the bot has signature verification turned on.
    pub(crate) secret: Option<String>,
    /// Base instead of Feishu's own; the token is appended as the last path part.
    pub(crate) url: Option<String>,
}

impl fmt::Debug for FeishuRobot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuRobot")
            .field("token", &Redacted)
            .field("secret", &self.secret.as_ref().map(|_| Redacted))
            .field("url", &self.url.as_deref().map(Origin))
            .finish()
    }
}

/// One `webhook:` entry: any HTTP endpoint that takes a JSON document per event.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Webhook {
    pub(crate) url: String,
    /// Extra request headers, typically `Authorization`.
    pub(crate) headers: BTreeMap<String, String>,
}

impl fmt::Debug for Webhook {
    /// Webhook addresses often carry their secret in the path or query, and headers carry
    /// tokens: only the scheme, host and header names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &Origin(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}
