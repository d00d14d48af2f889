//! Forwarded upstream requests: one CLIENT span per request, a root in its own trace.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::open::{Class, CompactId};
use super::*;
use crate::events::{EventMeta, ForwardEvent, ForwardStatus, TokenDetails, TokenUsage};
use crate::ids::{domain, SpanId, TraceRef};

#[derive(Debug)]
pub(super) struct Request {
    request_id: CompactId,
    pub(super) seq: u64,
    pub(super) last_seen: DateTime<Utc>,
    /// Boxed, like the completion: absent on most open requests, and an open entry should stay small.
    trace: Option<Box<TraceRef>>,
    start: Option<RequestStart>,
    completion: Option<Box<RequestDone>>,
}

#[derive(Debug)]
struct RequestStart {
    at: DateTime<Utc>,
    /// Interned: a handful of endpoints and models serve every request.
    endpoint: Arc<str>,
    model: Arc<str>,
    is_stream: bool,
}

#[derive(Debug)]
struct RequestDone {
    at: DateTime<Utc>,
    status_code: u16,
    status: ForwardStatus,
    usage: Option<TokenUsage>,
    latency_ms: u64,
    error: Option<String>,
    details: Option<TokenDetails>,
}

impl Translator {
    pub(super) fn forward(&mut self, event: &ForwardEvent, clock: DateTime<Utc>, out: &mut Output) {
        let meta = event.meta();
        let key = SpanId::derive(domain::FORWARD, event.request_id()).to_u64();
        if self.ended.contains(key) {
            return self.reject(sc::REJECT_ALREADY_ENDED, out);
        }
        let start = match event {
            ForwardEvent::RequestStarted { endpoint, model, is_stream, .. } => Some(RequestStart {
                at: meta.occurred_at,
                endpoint: self.strings.intern(endpoint),
                model: self.strings.intern(model),
                is_stream: *is_stream,
            }),
            ForwardEvent::RequestCompleted { .. } => None,
        };
        let req = self.touch_request(key, event.request_id(), meta, clock, out);
        let duplicate = match event {
            ForwardEvent::RequestStarted { .. } => req.start.replace(start.expect("built above")).is_some(),
            ForwardEvent::RequestCompleted { status_code, status, usage, latency_ms, error, token_details, .. } => req
                .completion
                .replace(Box::new(RequestDone {
                    at: meta.occurred_at,
                    status_code: *status_code,
                    status: status.clone(),
                    usage: *usage,
                    latency_ms: *latency_ms,
                    error: error.clone(),
                    details: token_details.filter(|d| !d.is_empty()),
                }))
                .is_some(),
        };
        if duplicate {
            self.reject(sc::REJECT_DUPLICATE, out);
        }
        if req_ready(self.requests.get(&key)) {
            self.finish_request(key, None, out);
        }
    }

    fn touch_request(
        &mut self,
        key: u64,
        request_id: &str,
        meta: &EventMeta,
        clock: DateTime<Utc>,
        out: &mut Output,
    ) -> &mut Request {
        if !self.requests.contains_key(&key) {
            self.make_room(None, clock, out);
        }
        let seq = self.lru.touch(Class::Request, key);
        let req = self.requests.entry(key).or_insert_with(|| Request {
            request_id: CompactId::new(request_id),
            seq,
            last_seen: clock,
            trace: None,
            start: None,
            completion: None,
        });
        req.seq = seq;
        req.last_seen = clock;
        if req.trace.is_none() {
            req.trace = meta.trace_id.as_deref().map(|t| Box::new(TraceRef::from_carried(t)));
        }
        req
    }

    /// Removes a request and emits its span; `end` is used when it never completed.
    fn finish_request(&mut self, key: u64, end: Option<DateTime<Utc>>, out: &mut Output) {
        let Some(req) = self.requests.remove(&key) else { return };
        self.ended.insert(key);
        let trace = req
            .trace
            .as_deref()
            .cloned()
            .unwrap_or_else(|| TraceRef::derived(domain::FORWARD, &req.request_id.as_str()));
        let incomplete = req.start.is_none() || req.completion.is_none();
        let endpoint = req.start.as_ref().map(|s| &*s.endpoint);
        let model = req.start.as_ref().map(|s| &*s.model).filter(|m| !m.is_empty());
        let operation = endpoint.map_or(sc::SPAN_FORWARD_UNKNOWN, genai::operation_from_endpoint);
        let provider = match endpoint.and_then(genai::provider_from_endpoint) {
            Some(p) => Some(Cow::Borrowed(p)),
            None => self.provider_of(model, out),
        };
        let cost = match req.completion.as_deref() {
            Some(RequestDone { usage: Some(u), details, .. }) => {
                self.price(provider.as_ref(), model, u, details.as_ref(), out)
            }
            _ => None,
        };

        let mut attrs = Vec::with_capacity(14);
        attrs.push(KeyValue::new(sc::GEN_AI_OPERATION_NAME, operation));
        if let Some(p) = &provider {
            attrs.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, p.clone()));
        }
        if let Some(m) = model {
            attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, m));
        }
        attrs.push(KeyValue::new(sc::BAMBOO_FORWARD_REQUEST_ID, &*req.request_id.as_str()));
        if let Some(st) = &req.start {
            attrs.push(KeyValue::new(sc::BAMBOO_FORWARD_ENDPOINT, &*st.endpoint));
            attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_STREAM, st.is_stream));
        }

        let (start, end, status) = match &req.completion {
            Some(done) => {
                attrs.push(KeyValue::new(sc::HTTP_RESPONSE_STATUS_CODE, done.status_code));
                attrs.push(KeyValue::new(sc::BAMBOO_FORWARD_STATUS, done.status.as_str()));
                if let Some(u) = done.usage {
                    attrs.push(KeyValue::new(sc::GEN_AI_USAGE_INPUT_TOKENS, u.prompt_tokens));
                    attrs.push(KeyValue::new(sc::GEN_AI_USAGE_OUTPUT_TOKENS, u.completion_tokens));
                    attrs.push(KeyValue::new(sc::BAMBOO_USAGE_TOTAL_TOKENS, u.total_tokens));
                }
                if let Some(d) = &done.details {
                    detail_attrs(d, &mut attrs);
                }
                if let Some(usd) = cost {
                    attrs.push(KeyValue::new(sc::BAMBOO_USAGE_COST, usd));
                }
                let status = match forward_error_type(done) {
                    Some(error_type) => {
                        attrs.push(KeyValue::new(sc::ERROR_TYPE, error_type.clone()));
                        let text = done.error.clone().unwrap_or_else(|| format!("HTTP {}", done.status_code));
                        error_status(&text, self.cfg.max_error_len, &mut attrs)
                    }
                    None => SpanStatus::Unset,
                };
                let start = req.start.as_ref().map_or_else(|| before(done.at, done.latency_ms), |s| s.at);
                (start.min(done.at), done.at, status)
            }
            None => {
                attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_INCOMPLETE));
                let start = req.start.as_ref().expect("a request entry has a start or a completion").at;
                let end = end.unwrap_or(req.last_seen).max(start);
                (start, end, SpanStatus::Error(sc::ERROR_INCOMPLETE.to_owned()))
            }
        };
        common_attrs(&trace, incomplete, &mut attrs);

        let span_id = SpanId(key.to_be_bytes());
        if let Some(done) = &req.completion {
            let this = SpanRef { trace_id: trace.id, span_id };
            let mut base = genai_metric_attrs(operation, model, provider.as_ref());
            if let Some(u) = done.usage {
                token_metrics(this, &base, u.prompt_tokens, u.completion_tokens, out);
                usage_token_counts(&base, &u, done.details.as_ref(), out);
            }
            if let Some(error_type) = forward_error_type(done) {
                base.push(KeyValue::new(sc::ERROR_TYPE, error_type));
            }
            // Tells forwarded requests from agent rounds in the shared duration histogram (a logical id, few values).
            base.push(KeyValue::new(sc::BAMBOO_FORWARD_ENDPOINT, endpoint.unwrap_or(sc::SPAN_FORWARD_UNKNOWN)));
            out.measure(this, Instrument::OperationDuration, seconds(done.latency_ms), base);
            out.count(
                Instrument::ForwardRequests,
                1,
                vec![
                    KeyValue::new(sc::BAMBOO_FORWARD_ENDPOINT, endpoint.unwrap_or(sc::SPAN_FORWARD_UNKNOWN)),
                    KeyValue::new(sc::BAMBOO_FORWARD_STATUS, done.status.as_str()),
                    KeyValue::new(sc::HTTP_RESPONSE_STATUS_CODE, done.status_code),
                ],
            );
        }

        let span = SpanRecord {
            trace_id: trace.id,
            span_id,
            parent_span_id: None,
            name: genai::span_name(operation, model),
            kind: SpanKind::Client,
            start,
            end,
            attributes: attrs,
            events: Vec::new(),
            status,
        };
        self.emitted(span, out);
    }

    /// Evicts a request entry; returns whether a span was emitted (always, if the entry existed).
    pub(super) fn evict_request(&mut self, key: u64, end: DateTime<Utc>, out: &mut Output) -> bool {
        if !self.requests.contains_key(&key) {
            return false;
        }
        self.finish_request(key, Some(end), out);
        true
    }
}

/// The cache and reasoning counts the provider reported; each only when present (absent is unknown, not zero).
fn detail_attrs(d: &TokenDetails, attrs: &mut Vec<KeyValue>) {
    for (_, key, n) in token_details(d) {
        if let Some(n) = n {
            attrs.push(KeyValue::new(key, n));
        }
    }
}

fn req_ready(req: Option<&Request>) -> bool {
    req.is_some_and(|r| r.start.is_some() && r.completion.is_some())
}

/// `error.type` of a failed request: the HTTP status code when it is an error code, else `_OTHER`.
/// `None` when the request did not fail.
fn forward_error_type(done: &RequestDone) -> Option<String> {
    let failed = done.status == ForwardStatus::Error || done.status_code >= 400;
    failed.then(|| if done.status_code >= 400 { done.status_code.to_string() } else { sc::ERROR_TYPE_OTHER.to_owned() })
}
