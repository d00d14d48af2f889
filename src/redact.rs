//! Redaction: what leaves the process, decided before anything is exported.
//!
//! Agents' telemetry carries things some deployments must not ship: the caller's correlation ids
//! (`bamboo.trace_id`), provider error texts (which can quote prompts), tool names that reveal internal systems.
//! A [`Redactor`] applies, in order:
//!
//! 1. **Rules**: attribute keys matched by a glob (`*` matches any run of characters), optionally only when the
//!    value matches a second glob, are dropped or replaced by a keyed hash. The pseudo-key `error.message`
//!    stands for the span status description, where error texts live.
//! 2. **The allowlist**, if one is set: attributes whose key matches none of its globs are dropped.
//! 3. **The hook**, if one is set: a function that sees each finished span last and may change anything in it.
//!
//! Rules and the allowlist apply to span attributes, span event attributes and metric attributes alike, so a
//! hashed tool name is the same pseudonym on the span and on `bamboo.tool_calls`. A span name that embeds a
//! redacted value (`execute_tool {gen_ai.tool.name}`, `chat {gen_ai.request.model}`) is rewritten to match.
//! Span and trace ids are not attributes and never change: a carried W3C `trace_id` is the span's trace id,
//! so hashing `bamboo.trace_id` hides only ids that are not W3C.
//!
//! Hashes are `h:` and 16 hex digits of SipHash-2-4 keyed by `BAMBOO_OTEL_REDACT_KEY` (or
//! [`crate::BridgeBuilder::redact_key`]): stable across processes and restarts with the same key, so a pseudonym
//! can still be grouped on. Without a key the hash is still stable, but anyone can hash a guessed tool name and
//! compare: set a secret key when the values are guessable.
//!
//! ```
//! use bamboo_otel::redact::{Action, Redactor};
//! let r: Redactor = "bamboo.trace_id=hash,error.message=drop,gen_ai.tool.name~internal_*=hash".parse().unwrap();
//! assert_eq!(r.rules().len(), 3);
//! assert!(matches!(r.rules()[2].action, Action::Hash));
//! ```
//!
//! | Variable | Meaning |
//! |---|---|
//! | `BAMBOO_OTEL_REDACT` | Rules, comma-separated: `KEY_GLOB=drop`, `KEY_GLOB=hash`, `KEY_GLOB~VALUE_GLOB=…` |
//! | `BAMBOO_OTEL_ATTRIBUTE_ALLOWLIST` | Key globs, comma-separated; other attributes are dropped |
//! | `BAMBOO_OTEL_REDACT_KEY` | Secret key for `hash` (never shown in errors or logs) |

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::translate::{AttrValue, KeyValue, MetricUpdate, SpanRecord, SpanStatus};

/// The pseudo-key that stands for a span's status description (its error text).
pub const ERROR_MESSAGE: &str = "error.message";

/// What a rule does to a matching attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Drop,
    Hash,
}

/// One rule: keys matching `key`, values matching `value` (any value when `None`), get `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub key: String,
    pub value: Option<String>,
    pub action: Action,
}

/// Sees each finished span after the rules and the allowlist.
pub type SpanHook = Arc<dyn Fn(&mut SpanRecord) + Send + Sync>;

/// Rules, allowlist and hook; the default does nothing and costs nothing.
#[derive(Clone, Default)]
pub struct Redactor {
    rules: Vec<Rule>,
    allow: Option<Vec<String>>,
    key: (u64, u64),
    hook: Option<SpanHook>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never printed.
        f.debug_struct("Redactor")
            .field("rules", &self.rules)
            .field("allow", &self.allow)
            .field("keyed", &(self.key != (0, 0)))
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// A rule or allowlist that does not parse: the text and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: expected KEY_GLOB=drop, KEY_GLOB=hash or KEY_GLOB~VALUE_GLOB=drop|hash")]
pub struct RuleError {
    pub text: String,
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        let err = || RuleError { text: text.to_owned() };
        let (target, action) = text.trim().rsplit_once('=').ok_or_else(err)?;
        let action = match action.trim() {
            "drop" => Action::Drop,
            "hash" => Action::Hash,
            _ => return Err(err()),
        };
        let (key, value) = match target.split_once('~') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_owned())),
            None => (target.trim(), None),
        };
        if key.is_empty() || value.as_deref() == Some("") {
            return Err(err());
        }
        Ok(Rule { key: key.to_owned(), value, action })
    }
}

impl std::str::FromStr for Redactor {
    type Err = RuleError;

    /// Comma-separated rules, as `BAMBOO_OTEL_REDACT` holds them.
    fn from_str(text: &str) -> Result<Redactor, RuleError> {
        let mut r = Redactor::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            r.rules.push(item.parse()?);
        }
        Ok(r)
    }
}

impl Redactor {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn push_rule(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Only attributes whose key matches one of these globs are kept (after the rules).
    pub fn set_allowlist(&mut self, globs: Vec<String>) {
        self.allow = Some(globs);
    }

    /// The secret that keys `hash`.
    pub fn set_key(&mut self, secret: &str) {
        let h = |salt: u64| {
            // SipHash-2-4, a keyed PRF: the same function std's deprecated `SipHasher` was, so pseudonyms keep
            // their values across the change.
            let mut s = siphasher::sip::SipHasher24::new_with_keys(salt, !salt);
            std::hash::Hasher::write(&mut s, secret.as_bytes());
            std::hash::Hasher::finish(&s)
        };
        self.key = (h(0x6261_6d62_6f6f_2d31), h(0x6261_6d62_6f6f_2d32));
    }

    pub fn set_hook(&mut self, hook: SpanHook) {
        self.hook = Some(hook);
    }

    /// Nothing to do: the worker skips the redactor entirely.
    pub fn is_noop(&self) -> bool {
        self.rules.is_empty() && self.allow.is_none() && self.hook.is_none()
    }

    /// The pseudonym `hash` gives `value`: `h:` and 16 hex digits.
    pub fn hash(&self, value: &str) -> String {
        let mut s = siphasher::sip::SipHasher24::new_with_keys(self.key.0, self.key.1);
        std::hash::Hasher::write(&mut s, value.as_bytes());
        format!("h:{:016x}", std::hash::Hasher::finish(&s))
    }

    /// The first rule for `key` and the value that `value()` gives; the value is only formatted when a rule for
    /// that key has a value glob.
    fn rule_for(&self, key: &str, value: impl Fn() -> String) -> Option<Action> {
        let mut text: Option<String> = None;
        self.rules
            .iter()
            .find(|r| {
                glob(&r.key, key) && r.value.as_deref().map_or(true, |v| glob(v, text.get_or_insert_with(&value)))
            })
            .map(|r| r.action)
    }

    fn allowed(&self, key: &str) -> bool {
        self.allow.as_ref().map_or(true, |globs| globs.iter().any(|g| glob(g, key)))
    }

    /// Applies rules and allowlist to `attrs`; returns the (old, new) values of string attributes that changed,
    /// `new` being `None` when dropped.
    fn attributes(&self, attrs: &mut Vec<KeyValue>) -> Vec<(String, Option<String>)> {
        let mut changed = Vec::new();
        attrs.retain_mut(|kv| {
            let action = if !self.allowed(kv.key) {
                Action::Drop
            } else {
                match self.rule_for(kv.key, || kv.value.to_string()) {
                    Some(action) => action,
                    None => return true,
                }
            };
            let text = kv.value.to_string();
            match action {
                Action::Drop => {
                    if matches!(kv.value, AttrValue::Str(_)) {
                        changed.push((text, None));
                    }
                    false
                }
                Action::Hash => {
                    let h = self.hash(&text);
                    kv.value = AttrValue::Str(Cow::Owned(h.clone()));
                    changed.push((text, Some(h)));
                    true
                }
            }
        });
        changed
    }

    /// Redacts one finished span (rules, allowlist, then the hook).
    pub fn span(&self, span: &mut SpanRecord) {
        if self.is_noop() {
            return;
        }
        let changed = self.attributes(&mut span.attributes);
        for e in &mut span.events {
            self.attributes(&mut e.attributes);
        }
        // A name embeds a value as its last word (`execute_tool Read`): follow what happened to that value.
        if let Some((op, last)) = span.name.rsplit_once(' ') {
            if let Some((_, new)) = changed.iter().find(|(old, _)| old == last) {
                span.name = match new {
                    Some(h) => format!("{op} {h}"),
                    None => op.to_owned(),
                };
            }
        }
        if let SpanStatus::Error(msg) = &mut span.status {
            match self.rule_for(ERROR_MESSAGE, || msg.clone()) {
                Some(Action::Drop) => msg.clear(),
                Some(Action::Hash) => *msg = self.hash(msg),
                None => {}
            }
        }
        if let Some(hook) = &self.hook {
            hook(span);
        }
    }

    /// Redacts one metric update's attributes (rules and allowlist; the hook sees spans only).
    pub fn metric(&self, m: &mut MetricUpdate) {
        if self.rules.is_empty() && self.allow.is_none() {
            return;
        }
        self.attributes(&mut m.attributes);
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last star swallow one more character and try again.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudonyms users already stored must keep their values: the `siphasher` crate computes what std's
    /// deprecated `SipHasher` (SipHash-2-4) did, key derivation included.
    #[test]
    fn pseudonyms_are_what_std_siphash_gave() {
        #[allow(deprecated)]
        let std_hash = |k0: u64, k1: u64, bytes: &[u8]| {
            let mut s = std::hash::SipHasher::new_with_keys(k0, k1);
            std::hash::Hasher::write(&mut s, bytes);
            std::hash::Hasher::finish(&s)
        };
        let mut r = Redactor::default();
        r.set_key("a secret");
        let derive = |salt: u64| std_hash(salt, !salt, b"a secret");
        assert_eq!(r.key, (derive(0x6261_6d62_6f6f_2d31), derive(0x6261_6d62_6f6f_2d32)));
        for value in ["", "alice@example.com", "internal_tool", &"x".repeat(1000)] {
            assert_eq!(r.hash(value), format!("h:{:016x}", std_hash(r.key.0, r.key.1, value.as_bytes())), "{value}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("gen_ai.*", "gen_ai.tool.name"));
        assert!(glob("*", ""));
        assert!(glob("internal_*_v?", "internal_db_v?"));
        assert!(glob("*token*", "gen_ai.usage.input_tokens"));
        assert!(!glob("gen_ai.*", "bamboo.trace_id"));
        assert!(!glob("a*b", "acbc"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn rules_parse_or_say_what_was_expected() {
        let r: Rule = "gen_ai.tool.name~internal_*=hash".parse().unwrap();
        assert_eq!(r, Rule { key: "gen_ai.tool.name".into(), value: Some("internal_*".into()), action: Action::Hash });
        for bad in ["bamboo.trace_id", "x=keep", "=drop", "k~=hash"] {
            let e = bad.parse::<Rule>().unwrap_err();
            assert!(e.to_string().contains("expected KEY_GLOB=drop"), "{e}");
        }
    }

    #[test]
    fn a_value_hashed_then_not_allowed_leaves_the_name_as_it_leaves_the_attribute() {
        use crate::translate::{SpanKind, SpanStatus};
        let mut r: Redactor = "gen_ai.tool.name=hash,bamboo.trace_id~t*=hash".parse().unwrap();
        r.set_allowlist(vec!["gen_ai.operation.*".into(), "bamboo.*".into()]);
        let t = chrono::Utc::now();
        let mut span = SpanRecord {
            trace_id: crate::ids::TraceId::derive("t", "x"),
            span_id: crate::ids::SpanId::derive("s", "x"),
            parent_span_id: None,
            name: "execute_tool Bash".into(),
            kind: SpanKind::Internal,
            start: t,
            end: t,
            attributes: vec![
                KeyValue::new("gen_ai.tool.name", "Bash"),
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("bamboo.trace_id", "trace-1"),
                KeyValue::new("bamboo.session.id", "s1"),
            ],
            events: vec![],
            status: SpanStatus::Unset,
        };
        r.span(&mut span);
        assert_eq!(span.name, "execute_tool", "the tool name is not allowed: gone from the name too");
        let keys: Vec<_> = span.attributes.iter().map(|kv| (kv.key, kv.value.to_string())).collect();
        assert_eq!(
            keys,
            vec![
                ("gen_ai.operation.name", "execute_tool".to_owned()),
                ("bamboo.trace_id", r.hash("trace-1")),
                ("bamboo.session.id", "s1".to_owned()),
            ]
        );
    }

    #[test]
    fn hashes_are_keyed_and_stable() {
        let (mut a, mut b) = (Redactor::default(), Redactor::default());
        a.set_key("sk-one-7f3");
        b.set_key("sk-two-7f3");
        assert_eq!(a.hash("Read"), a.clone().hash("Read"));
        assert_ne!(a.hash("Read"), b.hash("Read"));
        assert_eq!(a.hash("Read").len(), 18);
        assert!(!format!("{a:?}").contains("sk-one"));
    }
}
