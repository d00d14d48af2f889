//! Every span name part, attribute key and metric name the crate emits, in one place, so a rename is one line.
//!
//! GenAI names follow the OpenTelemetry GenAI semantic conventions as of schema 1.42 (`gen_ai.*`); Bamboo's own facts live under
//! `bamboo.*` and the bridge's health under `bamboo_otel.*`.

/// The schema the names below follow; set on the instrumentation scope of every span and metric.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.42.0";

// ---- GenAI attributes -------------------------------------------------------------------------------------
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
pub const ERROR_TYPE: &str = "error.type";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";

// ---- GenAI values ------------------------------------------------------------------------------------------
pub const OP_INVOKE_AGENT: &str = "invoke_agent";
pub const OP_CHAT: &str = "chat";
pub const OP_EXECUTE_TOOL: &str = "execute_tool";
pub const OP_TEXT_COMPLETION: &str = "text_completion";
pub const OP_GENERATE_CONTENT: &str = "generate_content";
pub const AGENT_NAME: &str = "bamboo";
pub const PROVIDER_OPENAI: &str = "openai";
pub const PROVIDER_ANTHROPIC: &str = "anthropic";
pub const PROVIDER_GEMINI: &str = "gcp.gemini";
pub const TOKEN_TYPE_INPUT: &str = "input";
pub const TOKEN_TYPE_OUTPUT: &str = "output";
pub const TOKEN_TYPE_CACHE_READ: &str = "cache_read";
pub const TOKEN_TYPE_CACHE_CREATION: &str = "cache_creation";
pub const TOKEN_TYPE_CACHE_WRITE: &str = "cache_write";
pub const TOKEN_TYPE_REASONING: &str = "reasoning";
/// `error.type` when nothing more specific is known, as the semantic conventions prescribe.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";
/// `error.type` and status message of a span that never completed.
pub const ERROR_INCOMPLETE: &str = "incomplete";

// ---- Bamboo attributes -------------------------------------------------------------------------------------
pub const BAMBOO_TRACE_ID: &str = "bamboo.trace_id";
pub const BAMBOO_SESSION_ID: &str = "bamboo.session.id";
pub const BAMBOO_SESSION_STATUS: &str = "bamboo.session.status";
pub const BAMBOO_SESSION_MESSAGE_COUNT: &str = "bamboo.session.message_count";
pub const BAMBOO_SESSION_RUN: &str = "bamboo.session.run";
pub const BAMBOO_ROUND_ID: &str = "bamboo.round.id";
pub const BAMBOO_ROUND_STATUS: &str = "bamboo.round.status";
pub const BAMBOO_ROUND_CACHED_TOOL_OUTPUTS: &str = "bamboo.round.cached_tool_outputs";
pub const BAMBOO_ROUND_CACHED_TOOL_TOKENS_SAVED: &str = "bamboo.round.cached_tool_tokens_saved";
pub const BAMBOO_TOOL_SUCCESS: &str = "bamboo.tool.success";
pub const BAMBOO_FORWARD_REQUEST_ID: &str = "bamboo.forward.request_id";
pub const BAMBOO_FORWARD_ENDPOINT: &str = "bamboo.forward.endpoint";
pub const BAMBOO_FORWARD_STATUS: &str = "bamboo.forward.status";
pub const BAMBOO_USAGE_TOTAL_TOKENS: &str = "bamboo.usage.total_tokens";
pub const BAMBOO_USAGE_CACHE_WRITE_INPUT_TOKENS: &str = "bamboo.usage.cache_write.input_tokens";
/// USD, on round and forwarded-request spans: what the operation cost by the price table.
pub const BAMBOO_USAGE_COST: &str = "bamboo.usage.cost";
/// A session run's totals. Not `gen_ai.usage.*` / `bamboo.usage.cost`: backends that sum those over every span
/// of a trace would count each round twice (once on the round, once in the session's total).
pub const BAMBOO_SESSION_USAGE_INPUT_TOKENS: &str = "bamboo.session.usage.input_tokens";
pub const BAMBOO_SESSION_USAGE_OUTPUT_TOKENS: &str = "bamboo.session.usage.output_tokens";
pub const BAMBOO_SESSION_USAGE_COST: &str = "bamboo.session.usage.cost";
pub const BAMBOO_SPAN_INCOMPLETE: &str = "bamboo.span.incomplete";
pub const BAMBOO_ERROR_TRUNCATED: &str = "bamboo.error.truncated";
pub const REASON: &str = "reason";
pub const BAMBOO_EVENT_TYPE: &str = "event_type";
pub const BAMBOO_OTEL_KIND: &str = "kind";

/// Set on the series that collects measurements beyond an instrument's cardinality limit (OTel SDK spec).
pub const OTEL_METRIC_OVERFLOW: &str = "otel.metric.overflow";
/// Which metric an internal count is about.
pub const METRIC: &str = "metric";

/// Name (and operation) of a forwarded-request span whose start, hence endpoint and model, was never seen.
pub const SPAN_FORWARD_UNKNOWN: &str = "forward";

// ---- Span events (on the session span) ---------------------------------------------------------------------
pub const EVENT_SESSION_RESUMED: &str = "bamboo.session.resumed";

// ---- Metric instruments ------------------------------------------------------------------------------------

/// What kind of OpenTelemetry instrument a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrumentKind {
    Counter,
    /// A counter of amounts (USD), not of things.
    FloatCounter,
    UpDownCounter,
    Histogram,
}

/// A metric instrument: its name, unit, description, kind and (for histograms) explicit bucket boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstrumentDef {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: InstrumentKind,
    pub buckets: &'static [f64],
}

/// Semconv buckets for `gen_ai.client.token.usage`: powers of 4 from 1 to 4^13.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// Semconv buckets for `gen_ai.client.operation.duration` (seconds), also used for tool durations.
pub const DURATION_BUCKETS: &[f64] =
    &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// Semconv buckets for `gen_ai.invoke_agent.duration` (seconds).
pub const AGENT_DURATION_BUCKETS: &[f64] = &[0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6];

/// Buckets for `bamboo.session.cost` (USD): from a tenth of a cent to $100, roughly ×3 apart.
pub const COST_BUCKETS: &[f64] = &[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

macro_rules! instruments {
    ($($(#[$doc:meta])* $ident:ident = $name:literal, $unit:literal, $kind:ident, $buckets:expr, $desc:literal;)+) => {
        /// Every metric instrument the crate records to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Instrument { $($(#[$doc])* $ident,)+ }

        impl Instrument {
            pub const ALL: &'static [Instrument] = &[$(Instrument::$ident,)+];

            pub const fn def(self) -> InstrumentDef {
                match self {
                    $(Instrument::$ident => InstrumentDef {
                        name: $name, unit: $unit, description: $desc,
                        kind: InstrumentKind::$kind, buckets: $buckets,
                    },)+
                }
            }

            pub const fn name(self) -> &'static str {
                self.def().name
            }
        }
    };
}

instruments! {
    TokenUsage = "gen_ai.client.token.usage", "{token}", Histogram, TOKEN_BUCKETS,
        "Tokens used per round or forwarded request, by token type";
    OperationDuration = "gen_ai.client.operation.duration", "s", Histogram, DURATION_BUCKETS,
        "Duration of LLM rounds and forwarded requests";
    ToolDuration = "gen_ai.execute_tool.duration", "s", Histogram, DURATION_BUCKETS,
        "Duration of tool calls";
    InvokeAgentDuration = "gen_ai.invoke_agent.duration", "s", Histogram, AGENT_DURATION_BUCKETS,
        "Duration of agent session runs";
    UsageTokens = "bamboo.usage.tokens", "{token}", Counter, &[],
        "Tokens by type (input, output, cache_read, cache_creation, cache_write, reasoning); cache and reasoning types are parts of input and output, never add them up";
    Cost = "bamboo.cost", "{USD}", FloatCounter, &[],
        "What rounds and forwarded requests cost in USD by the price table, by provider, model and token type";
    CacheSavings = "bamboo.cost.cache_savings", "{USD}", FloatCounter, &[],
        "USD saved by prompt-cache reads against the input price, by provider and model";
    SessionCost = "bamboo.session.cost", "{USD}", Histogram, COST_BUCKETS,
        "What a session run cost in USD (its priced rounds)";
    Sessions = "bamboo.sessions", "{session}", Counter, &[],
        "Agent session runs ended, by status";
    Rounds = "bamboo.rounds", "{round}", Counter, &[],
        "Agent rounds completed, by status and model";
    ToolCalls = "bamboo.tool_calls", "{call}", Counter, &[],
        "Tool calls, by tool name and success";
    ForwardRequests = "bamboo.forward.requests", "{request}", Counter, &[],
        "Forwarded upstream requests, by endpoint, status and HTTP status code";
    ExecuteSyncMismatches = "bamboo.execute_sync.mismatches", "{mismatch}", Counter, &[],
        "Bamboo's execute-sync mismatches by reason (metrics.db execute_sync_mismatch_metrics, via a one-shot import-db)";
    UpstreamDropped = "bamboo.metrics.dropped", "{event}", Counter, &[],
        "Events Bamboo's own metrics system reported dropped (MetricsDropped), by reason";
    UpstreamStorageErrors = "bamboo.storage.errors", "{error}", Counter, &[],
        "Storage errors Bamboo's metrics system reported, by event type";
    UpstreamWorkers = "bamboo.metrics.workers", "{worker}", UpDownCounter, &[],
        "Bamboo metrics workers running (WorkerStarted minus WorkerStopped)";
    BridgeEvents = "bamboo_otel.events", "{event}", Counter, &[],
        "Events received by the bridge, by kind";
    BridgeRejected = "bamboo_otel.events.rejected", "{event}", Counter, &[],
        "Events the bridge did not translate, by reason";
    BridgeIncomplete = "bamboo_otel.spans.incomplete", "{span}", Counter, &[],
        "Spans emitted without their start or their completion";
    BridgeEvicted = "bamboo_otel.spans.evicted", "{span}", Counter, &[],
        "Open spans closed by the bridge (idle time-to-live, capacity, shutdown), by reason";
    BridgeSpansDropped = "bamboo_otel.spans.dropped", "{span}", Counter, &[],
        "Spans that could not be exported (buffer full during an outage, shutdown deadline), by reason";
    BridgeExportFailures = "bamboo_otel.export.failures", "{batch}", Counter, &[],
        "Export attempts that failed, by signal and reason";
    BridgeProviderUnknown = "bamboo_otel.provider.unknown", "{span}", Counter, &[],
        "Spans whose model no provider rule matched, so gen_ai.provider.name is absent, by model";
    BridgeCostUnpriced = "bamboo_otel.cost.unpriced", "{span}", Counter, &[],
        "Spans with token usage but no price for their provider and model, so no cost, by model";
    BridgeMetricOverflow = "bamboo_otel.metric.overflow", "{measurement}", Counter, &[],
        "Measurements folded into otel.metric.overflow=true because their metric reached its cardinality limit, by metric";
}

// ---- Reasons (low-cardinality values of the `reason` attribute) -------------------------------------------
pub const REJECT_DUPLICATE: &str = "duplicate";
pub const REJECT_ALREADY_ENDED: &str = "already_ended";
pub const REJECT_QUEUE_FULL: &str = "queue_full";
pub const EVICT_IDLE: &str = "idle";
pub const EVICT_CAPACITY: &str = "capacity";
pub const EVICT_SHUTDOWN: &str = "shutdown";
pub const EVICT_ORPHAN: &str = "orphan";
/// Spans the backend refused for good (an OTLP non-retryable response).
/// Which signal an export carried: `traces` or `metrics`.
pub const SIGNAL: &str = "signal";
pub const DROP_REJECTED: &str = "rejected";
/// Spans lost to the pending buffer's bound while the backend was failing.
pub const DROP_EXPORT_FAILED: &str = "export_failed";
/// An export the backend took while refusing some of what it held (OTLP partial success).
pub const PARTIAL_SUCCESS: &str = "partial_success";
