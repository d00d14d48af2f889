//! Mapping Bamboo's vocabulary onto the GenAI semantic conventions: providers, operations, error texts.

use std::borrow::Cow;

use crate::semconv as sc;

/// The provider named by an endpoint prefix (`openai.chat_completions` → `openai`).
pub fn provider_from_endpoint(endpoint: &str) -> Option<&'static str> {
    provider_from_prefix(endpoint.split('.').next().unwrap_or(""))
}

/// What a `provider/` prefix of a model name says. An unknown prefix (`ollama/`, `openrouter/`) says the model
/// is served by someone this table does not know, so the family of the bare name is not trusted either.
fn provider_from_prefix(prefix: &str) -> Option<&'static str> {
    match prefix.to_ascii_lowercase().as_str() {
        "openai" => Some(sc::PROVIDER_OPENAI),
        "anthropic" => Some(sc::PROVIDER_ANTHROPIC),
        "gemini" | "google" | "gcp.gemini" => Some(sc::PROVIDER_GEMINI),
        "azure" | "azure.ai.openai" => Some("azure.ai.openai"),
        "bedrock" | "aws.bedrock" => Some("aws.bedrock"),
        "vertex" | "vertex_ai" | "gcp.vertex_ai" => Some("gcp.vertex_ai"),
        "mistral" | "mistral_ai" => Some("mistral_ai"),
        "deepseek" => Some("deepseek"),
        "groq" => Some("groq"),
        "xai" | "x_ai" => Some("x_ai"),
        "cohere" => Some("cohere"),
        "perplexity" => Some("perplexity"),
        "moonshot" | "moonshot_ai" => Some("moonshot_ai"),
        _ => None,
    }
}

/// Model families and the `gen_ai.provider.name` of the vendor that makes them, for bare model names (rounds
/// carry no endpoint). First match wins; globs match the whole name, `*` any run of characters. Values are the
/// semantic conventions' well-known provider names. Extend or override with [`ProviderRules::push`]
/// (builder `provider_rule`, environment `BAMBOO_OTEL_MODEL_PROVIDERS`).
pub const MODEL_FAMILIES: &[(&str, &str)] = &[
    ("claude-*", sc::PROVIDER_ANTHROPIC),
    ("gpt-*", sc::PROVIDER_OPENAI),
    ("chatgpt-*", sc::PROVIDER_OPENAI),
    ("o1", sc::PROVIDER_OPENAI),
    ("o1-*", sc::PROVIDER_OPENAI),
    ("o3", sc::PROVIDER_OPENAI),
    ("o3-*", sc::PROVIDER_OPENAI),
    ("o4*", sc::PROVIDER_OPENAI),
    ("text-embedding-*", sc::PROVIDER_OPENAI),
    ("gemini-*", sc::PROVIDER_GEMINI),
    ("mistral-*", "mistral_ai"),
    ("codestral-*", "mistral_ai"),
    ("magistral-*", "mistral_ai"),
    ("deepseek-*", "deepseek"),
    ("grok-*", "x_ai"),
    ("command-*", "cohere"),
    ("sonar*", "perplexity"),
    ("kimi-*", "moonshot_ai"),
];

/// How a model name becomes a `gen_ai.provider.name`, in this order: the user's rules (glob on the whole model
/// name, as given), a known `provider/` prefix, then [`MODEL_FAMILIES`] on a bare name. Anything else has no
/// provider: the attribute stays absent (never a guess) and `bamboo_otel.provider.unknown` counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderRules {
    user: Vec<(String, Cow<'static, str>)>,
}

impl ProviderRules {
    /// Adds a rule ahead of the built-in ones: models matching `glob` are served by `provider`.
    pub fn push(&mut self, glob: impl Into<String>, provider: impl Into<String>) {
        self.user.push((glob.into(), Cow::Owned(provider.into())));
    }

    /// Parses `glob=provider,glob=provider` (the `BAMBOO_OTEL_MODEL_PROVIDERS` form).
    pub fn parse(list: &str) -> Result<ProviderRules, String> {
        let mut rules = ProviderRules::default();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((g, p)) if !g.trim().is_empty() && !p.trim().is_empty() => rules.push(g.trim(), p.trim()),
                _ => return Err(format!("{item:?} is not glob=provider")),
            }
        }
        Ok(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The provider of `model`, if the rules know it.
    pub fn provider(&self, model: &str) -> Option<Cow<'static, str>> {
        if let Some((_, p)) = self.user.iter().find(|(g, _)| crate::redact::glob(g, model)) {
            return Some(p.clone());
        }
        if let Some((prefix, _)) = model.split_once('/') {
            return provider_from_prefix(prefix).map(Cow::Borrowed);
        }
        let lower = model.to_ascii_lowercase();
        MODEL_FAMILIES.iter().find(|(g, _)| crate::redact::glob(g, &lower)).map(|(_, p)| Cow::Borrowed(*p))
    }
}

/// The model name without any `provider/` prefix: what price globs and families match.
pub fn bare_model(model: &str) -> &str {
    model.rsplit_once('/').map_or(model, |(_, m)| m)
}

/// The GenAI operation of a forwarded endpoint (`anthropic.messages` → `chat`). Unknown endpoints keep their
/// suffix, which stays low-cardinality because endpoints are a fixed set of logical ids upstream.
pub fn operation_from_endpoint(endpoint: &str) -> &str {
    let suffix = endpoint.split_once('.').map_or(endpoint, |(_, s)| s);
    match suffix {
        "chat_completions" | "responses" | "messages" => sc::OP_CHAT,
        "complete" | "completions" => sc::OP_TEXT_COMPLETION,
        "generate_content" | "stream_generate_content" => sc::OP_GENERATE_CONTENT,
        "embeddings" => "embeddings",
        other => other,
    }
}

/// The operation as a `'static` string when it is one of the known ones (no allocation per attribute).
pub fn known_operation(op: &str) -> Option<&'static str> {
    [
        sc::OP_CHAT,
        sc::OP_TEXT_COMPLETION,
        sc::OP_GENERATE_CONTENT,
        sc::OP_EXECUTE_TOOL,
        sc::OP_INVOKE_AGENT,
        "embeddings",
    ]
    .into_iter()
    .find(|k| *k == op)
}

/// `"{operation} {model}"`, or just the operation when the model is unknown or empty.
pub fn span_name(operation: &str, model: Option<&str>) -> String {
    match model {
        Some(m) if !m.is_empty() => format!("{operation} {m}"),
        _ => operation.to_owned(),
    }
}

/// Truncates `text` to at most `max_bytes` bytes on a UTF-8 character boundary. Returns the text and whether it
/// was cut.
pub fn truncate_utf8(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_from_endpoints_and_models() {
        assert_eq!(provider_from_endpoint("openai.responses"), Some("openai"));
        assert_eq!(provider_from_endpoint("anthropic.messages"), Some("anthropic"));
        assert_eq!(provider_from_endpoint("gemini.stream_generate_content"), Some("gcp.gemini"));
        assert_eq!(provider_from_endpoint("mistral.chat"), Some("mistral_ai"));
        assert_eq!(provider_from_endpoint("ollama.chat"), None);
        let rules = ProviderRules::default();
        let p = |m: &str| rules.provider(m).map(|c| c.into_owned());
        assert_eq!(p("openai/gpt-4o").as_deref(), Some("openai"));
        assert_eq!(p("gpt-4o").as_deref(), Some("openai"));
        assert_eq!(p("claude-sonnet-4-5").as_deref(), Some("anthropic"));
        assert_eq!(p("o3-mini").as_deref(), Some("openai"));
        assert_eq!(p("o4-mini").as_deref(), Some("openai"));
        assert_eq!(p("gemini-2.5-pro").as_deref(), Some("gcp.gemini"));
        assert_eq!(p("azure/gpt-4o").as_deref(), Some("azure.ai.openai"));
        assert_eq!(p("ollama/llama3"), None);
        assert_eq!(p("openrouter/claude-sonnet-4-5"), None);
        assert_eq!(p("llama3"), None);
        assert_eq!(p("omni"), None);
        let mut mine = ProviderRules::parse("my-*=azure.ai.openai, claude-*=aws.bedrock").unwrap();
        mine.push("ollama/*", "ollama");
        assert_eq!(mine.provider("my-gpt").as_deref(), Some("azure.ai.openai"));
        assert_eq!(mine.provider("claude-opus-4").as_deref(), Some("aws.bedrock"));
        assert_eq!(mine.provider("ollama/llama3").as_deref(), Some("ollama"));
        assert!(ProviderRules::parse("nope").is_err());
    }

    #[test]
    fn operations() {
        assert_eq!(operation_from_endpoint("openai.chat_completions"), "chat");
        assert_eq!(operation_from_endpoint("anthropic.complete"), "text_completion");
        assert_eq!(operation_from_endpoint("gemini.generate_content"), "generate_content");
        assert_eq!(operation_from_endpoint("openai.models"), "models");
        assert_eq!(span_name("chat", Some("gpt-4o")), "chat gpt-4o");
        assert_eq!(span_name("chat", Some("")), "chat");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), ("h", true));
        assert_eq!(truncate_utf8("héllo", 3), ("hé", true));
        assert_eq!(truncate_utf8("hi", 10), ("hi", false));
        assert_eq!(truncate_utf8("🚫x", 3), ("", true));
    }
}
