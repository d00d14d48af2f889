//! Deterministic trace and span ids.
//!
//! Every span id is a pure function of a Bamboo id, so a child can name its parent before the parent ends, and two
//! processes that each see part of one session (an agent and a sidecar reading `metrics.db`, say) produce spans
//! that join up in the backend.
//!
//! The function is part of the crate's stable interface: changing it would split traces across versions. It is
//! FNV-1a 64 over the bytes of `domain`, one `0x00` byte and `id`, started from two different offset bases, each
//! lane finished with the SplitMix64 finalizer. A span id is lane A; a trace id is lane A followed by lane B, big
//! endian. An all-zero result (invalid in OpenTelemetry) becomes 1. `tests/ids.rs` pins known values.

use std::fmt;

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const OFFSET_A: u64 = 0xcbf2_9ce4_8422_2325; // the standard FNV-1a 64 offset basis
const OFFSET_B: u64 = 0x6c62_272e_07bb_0142; // the 128-bit basis' low word: an independent second lane

/// A 16-byte OpenTelemetry trace id, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte OpenTelemetry span id, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

fn fnv1a(basis: u64, domain: &str, id: &str) -> u64 {
    let mut h = basis;
    for &b in domain.as_bytes().iter().chain(&[0u8]).chain(id.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    splitmix_finalize(h)
}

fn splitmix_finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SpanId {
    /// The span id for `id` within `domain` (`"session"`, `"round"`, `"tool"`, `"forward"`, …).
    pub fn derive(domain: &str, id: &str) -> SpanId {
        SpanId(fnv1a(OFFSET_A, domain, id).max(1).to_be_bytes())
    }

    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

impl TraceId {
    /// The trace id for `id` within `domain`.
    pub fn derive(domain: &str, id: &str) -> TraceId {
        let hi = fnv1a(OFFSET_A, domain, id);
        let lo = fnv1a(OFFSET_B, domain, id);
        let v = ((u128::from(hi) << 64) | u128::from(lo)).max(1);
        TraceId(v.to_be_bytes())
    }

    /// Parses a W3C trace id: exactly 32 hex digits (either case), not all zero.
    pub fn parse_w3c(s: &str) -> Option<TraceId> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u128::from_str_radix(s, 16).ok()?;
        (v != 0).then(|| TraceId(v.to_be_bytes()))
    }

    pub fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.to_u128())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.to_u64())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// Where a trace id came from, which decides whether the original string is kept as `bamboo.trace_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceSource {
    /// A valid W3C trace id carried by the events, used as it is.
    W3c,
    /// Another string carried by the events, hashed; the string is kept as an attribute.
    Opaque(String),
    /// No trace id on the events: derived from the session or request id.
    Derived,
}

/// A resolved trace: the id and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRef {
    pub id: TraceId,
    pub source: TraceSource,
}

impl TraceRef {
    /// Resolves an event's `trace_id` string: W3C ids as they are, any other string hashed.
    pub fn from_carried(s: &str) -> TraceRef {
        match TraceId::parse_w3c(s) {
            Some(id) => TraceRef { id, source: TraceSource::W3c },
            None => TraceRef { id: TraceId::derive("trace", s), source: TraceSource::Opaque(s.to_owned()) },
        }
    }

    /// The trace of something whose events carry no trace id, derived from its own id.
    pub fn derived(domain: &str, id: &str) -> TraceRef {
        TraceRef { id: TraceId::derive(domain, id), source: TraceSource::Derived }
    }
}

/// Domains: the first argument of [`SpanId::derive`] / [`TraceId::derive`] for each Bamboo id.
pub mod domain {
    pub const SESSION: &str = "session";
    pub const ROUND: &str = "round";
    pub const TOOL: &str = "tool";
    pub const FORWARD: &str = "forward";
    /// A resumed session run: `session_id` + `/` + the `event_id` of the `SessionStarted` that resumed it.
    pub const SESSION_RUN: &str = "session-run";
}
