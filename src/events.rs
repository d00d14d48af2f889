//! The Bamboo metrics events, exactly as they appear on the wire.
//!
//! These types read and write the JSON that Bamboo's own crates produce (see `WIRE.md` in the reference
//! material): serde's externally tagged enums, struct fields under their Rust names, `null` for absent
//! values, RFC 3339 UTC timestamps, one event per line.
//!
//! ```
//! use bamboo_otel::events::{ChatEvent, MetricsEvent};
//!
//! let line = r#"{"Chat":{"SessionStarted":{"meta":{"event_id":"e1","occurred_at":"2026-04-30T12:00:00Z","trace_id":null},"session_id":"s1","model":"gpt-4"}}}"#;
//! let event = MetricsEvent::from_json(line).unwrap();
//! assert!(matches!(event, MetricsEvent::Chat(ChatEvent::SessionStarted { .. })));
//! ```
//!
//! Two upstream generations are in the field: statuses gained `awaiting_response` (sessions) and `pending`
//! (forwarded requests) in mid-2026. Both parse, and so does any status this crate has never heard of: it is
//! kept as [`SessionStatus::Other`] (and likewise for the other status enums) and carried through to the span,
//! so a newer Bamboo never makes its events unreadable. Unknown *fields* are ignored for the same reason.
//!
//! # The storage path
//!
//! Bamboo writes more to `metrics.db` (through `MetricsStorage`) than its events carry: tool error texts, cache
//! and reasoning token counts, prompt-cached tool outputs. The sources that read that path (`sources::db`, the
//! `bamboo` tee) fill the optional fields marked "storage-path
//! only". They are skipped when absent, so an event from Bamboo's own wire serializes back exactly as it came.
//!
//! This module depends on serde, chrono and uuid only; it is compiled whatever features are enabled.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Metadata carried by every chat and forward event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Unique event id (a UUID v4 upstream). Two events with the same id are the same event.
    pub event_id: String,
    /// When the event occurred.
    pub occurred_at: DateTime<Utc>,
    /// Optional id correlating events across services: a 32-hex W3C trace id or any other string.
    pub trace_id: Option<String>,
}

impl EventMeta {
    /// Fresh metadata: a new UUID v4, the current time, no trace id.
    pub fn new() -> Self {
        Self { event_id: uuid::Uuid::new_v4().to_string(), occurred_at: Utc::now(), trace_id: None }
    }

    /// Fresh metadata carrying `trace_id`.
    pub fn with_trace_id(trace_id: impl Into<String>) -> Self {
        Self { trace_id: Some(trace_id.into()), ..Self::new() }
    }

    /// Metadata with every field given; handy in tests and replays.
    pub fn at(event_id: impl Into<String>, occurred_at: DateTime<Utc>, trace_id: Option<String>) -> Self {
        Self { event_id: event_id.into(), occurred_at, trace_id }
    }
}

impl Default for EventMeta {
    fn default() -> Self {
        Self::new()
    }
}

/// Token counts reported by the model provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Token counts some providers report beyond [`TokenUsage`] (Bamboo's `ForwardTokenDetails`). Each is `None`
/// when the provider did not say, which is not zero. Cache read and cache creation are parts of the input tokens;
/// cache write is separate provider metadata (OpenAI's, not Anthropic's cache creation); reasoning is part of the
/// output tokens. Never add them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_output_tokens: Option<u64>,
}

impl TokenDetails {
    pub fn is_empty(&self) -> bool {
        *self == TokenDetails::default()
    }
}

/// A round's prompt-cached tool outputs (Bamboo's `prompt_cached_tool_outputs` and
/// `prompt_cached_tool_tokens_saved`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedToolOutputs {
    pub outputs: u32,
    pub tokens_saved: u32,
}

/// Declares a status enum that (de)serializes as a snake_case string and keeps unknown values in `Other`.
macro_rules! open_status {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A status this version of the crate does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string, e.g. `"success"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s,
                }
            }

            /// Parses a wire string; never fails.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

open_status! {
    /// Final status of an agent round.
    RoundStatus {
        Running => "running",
        Success => "success",
        Error => "error",
        Cancelled => "cancelled",
    }
}

open_status! {
    /// Status of an agent session.
    SessionStatus {
        Running => "running",
        Completed => "completed",
        Error => "error",
        Cancelled => "cancelled",
        /// The agent paused for the user; Bamboo resumes the session with a new `SessionStarted`.
        AwaitingResponse => "awaiting_response",
    }
}

open_status! {
    /// Status of a forwarded upstream request.
    ForwardStatus {
        Success => "success",
        Error => "error",
        /// Completed but still streaming or otherwise undecided (newer Bamboo).
        Pending => "pending",
    }
}

/// Every event Bamboo's metrics system emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricsEvent {
    Chat(ChatEvent),
    Forward(ForwardEvent),
    System(SystemEvent),
}

/// Events from the agent's chat loop: sessions, rounds, tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChatEvent {
    SessionStarted {
        meta: EventMeta,
        session_id: String,
        model: String,
    },
    SessionCompleted {
        meta: EventMeta,
        session_id: String,
        status: SessionStatus,
    },
    RoundStarted {
        meta: EventMeta,
        round_id: String,
        session_id: String,
        model: String,
    },
    RoundCompleted {
        meta: EventMeta,
        round_id: String,
        session_id: String,
        status: RoundStatus,
        usage: TokenUsage,
        latency_ms: u64,
        error: Option<String>,
        /// Tool outputs served from the prompt cache in this round, and the tokens that saved. Storage-path
        /// only (see [the module docs](self#the-storage-path)); absent on Bamboo's event wire.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cached_tool_outputs: Option<CachedToolOutputs>,
    },
    /// A finished tool call; it started `latency_ms` before `occurred_at`.
    ToolCalled {
        meta: EventMeta,
        tool_call_id: String,
        round_id: String,
        session_id: String,
        tool_name: String,
        latency_ms: u64,
        success: bool,
        /// What failed. Storage-path only; absent on Bamboo's event wire.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    MessageCountUpdated {
        meta: EventMeta,
        session_id: String,
        message_count: u32,
    },
}

/// Events from Bamboo's proxy when it forwards a request to an upstream model API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ForwardEvent {
    RequestStarted {
        meta: EventMeta,
        request_id: String,
        /// A logical id such as `openai.chat_completions`, not a URL.
        endpoint: String,
        model: String,
        is_stream: bool,
    },
    RequestCompleted {
        meta: EventMeta,
        request_id: String,
        status_code: u16,
        status: ForwardStatus,
        /// `None` when the upstream reported no usage (not the same as zero usage).
        usage: Option<TokenUsage>,
        latency_ms: u64,
        error: Option<String>,
        /// Cache and reasoning token counts. Storage-path only; absent on Bamboo's event wire.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_details: Option<TokenDetails>,
    },
}

/// Events about Bamboo's metrics system itself. They carry no metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemEvent {
    MetricsDropped { count: u64, reason: String },
    StorageError { error: String, event_type: String },
    WorkerStarted,
    WorkerStopped,
}

/// The low-cardinality kind of an event, used as a metric attribute (`chat`, `forward`, `system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Chat,
    Forward,
    System,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Chat => "chat",
            EventKind::Forward => "forward",
            EventKind::System => "system",
        }
    }
}

impl MetricsEvent {
    /// Parses one JSON line. The error says what is wrong in a form fit for `FILE:LINE: …` messages and
    /// carries a low-cardinality [`ParseErrorKind`] for counting.
    pub fn from_json(line: &str) -> Result<Self, ParseError> {
        serde_json::from_str(line).map_err(ParseError::from_serde)
    }

    /// Serializes to one JSON line (no trailing newline), exactly as Bamboo writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }

    pub fn kind(&self) -> EventKind {
        match self {
            MetricsEvent::Chat(_) => EventKind::Chat,
            MetricsEvent::Forward(_) => EventKind::Forward,
            MetricsEvent::System(_) => EventKind::System,
        }
    }

    /// The variant's name as on the wire, e.g. `Chat.RoundCompleted` (for counts by kind).
    pub fn variant(&self) -> &'static str {
        match self {
            MetricsEvent::Chat(ChatEvent::SessionStarted { .. }) => "Chat.SessionStarted",
            MetricsEvent::Chat(ChatEvent::SessionCompleted { .. }) => "Chat.SessionCompleted",
            MetricsEvent::Chat(ChatEvent::RoundStarted { .. }) => "Chat.RoundStarted",
            MetricsEvent::Chat(ChatEvent::RoundCompleted { .. }) => "Chat.RoundCompleted",
            MetricsEvent::Chat(ChatEvent::ToolCalled { .. }) => "Chat.ToolCalled",
            MetricsEvent::Chat(ChatEvent::MessageCountUpdated { .. }) => "Chat.MessageCountUpdated",
            MetricsEvent::Forward(ForwardEvent::RequestStarted { .. }) => "Forward.RequestStarted",
            MetricsEvent::Forward(ForwardEvent::RequestCompleted { .. }) => "Forward.RequestCompleted",
            MetricsEvent::System(SystemEvent::MetricsDropped { .. }) => "System.MetricsDropped",
            MetricsEvent::System(SystemEvent::StorageError { .. }) => "System.StorageError",
            MetricsEvent::System(SystemEvent::WorkerStarted) => "System.WorkerStarted",
            MetricsEvent::System(SystemEvent::WorkerStopped) => "System.WorkerStopped",
        }
    }

    /// The event's metadata; `None` for system events.
    pub fn meta(&self) -> Option<&EventMeta> {
        match self {
            MetricsEvent::Chat(c) => Some(c.meta()),
            MetricsEvent::Forward(f) => Some(f.meta()),
            MetricsEvent::System(_) => None,
        }
    }
}

impl ChatEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            ChatEvent::SessionStarted { meta, .. }
            | ChatEvent::SessionCompleted { meta, .. }
            | ChatEvent::RoundStarted { meta, .. }
            | ChatEvent::RoundCompleted { meta, .. }
            | ChatEvent::ToolCalled { meta, .. }
            | ChatEvent::MessageCountUpdated { meta, .. } => meta,
        }
    }

    pub fn session_id(&self) -> &str {
        match self {
            ChatEvent::SessionStarted { session_id, .. }
            | ChatEvent::SessionCompleted { session_id, .. }
            | ChatEvent::RoundStarted { session_id, .. }
            | ChatEvent::RoundCompleted { session_id, .. }
            | ChatEvent::ToolCalled { session_id, .. }
            | ChatEvent::MessageCountUpdated { session_id, .. } => session_id,
        }
    }
}

impl ForwardEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            ForwardEvent::RequestStarted { meta, .. } | ForwardEvent::RequestCompleted { meta, .. } => meta,
        }
    }

    pub fn request_id(&self) -> &str {
        match self {
            ForwardEvent::RequestStarted { request_id, .. } | ForwardEvent::RequestCompleted { request_id, .. } => {
                request_id
            }
        }
    }
}

impl From<ChatEvent> for MetricsEvent {
    fn from(e: ChatEvent) -> Self {
        MetricsEvent::Chat(e)
    }
}

impl From<ForwardEvent> for MetricsEvent {
    fn from(e: ForwardEvent) -> Self {
        MetricsEvent::Forward(e)
    }
}

impl From<SystemEvent> for MetricsEvent {
    fn from(e: SystemEvent) -> Self {
        MetricsEvent::System(e)
    }
}

/// Why a line could not be read as an event. Low cardinality: usable as a metric attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// Not JSON at all, or truncated.
    InvalidJson,
    /// Valid JSON naming an event variant this crate does not know (a newer Bamboo, or a typo).
    UnknownVariant,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong type or an unreadable value (a bad timestamp, a negative latency).
    InvalidField,
}

impl ParseErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseErrorKind::InvalidJson => "invalid_json",
            ParseErrorKind::UnknownVariant => "unknown_variant",
            ParseErrorKind::MissingField => "missing_field",
            ParseErrorKind::InvalidField => "invalid_field",
        }
    }
}

/// A line that is not a readable [`MetricsEvent`]. `Display` gives serde's description with the column.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub message: String,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ParseError {
    fn from_serde(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let message = e.to_string();
        let kind = match e.classify() {
            Category::Io | Category::Syntax | Category::Eof => ParseErrorKind::InvalidJson,
            Category::Data if message.starts_with("unknown variant") => ParseErrorKind::UnknownVariant,
            Category::Data if message.starts_with("missing field") => ParseErrorKind::MissingField,
            Category::Data => ParseErrorKind::InvalidField,
        };
        ParseError { kind, message }
    }
}
