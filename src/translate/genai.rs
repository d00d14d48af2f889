//! Mapping Bamboo's vocabulary onto the GenAI semantic conventions: providers, operations, error texts.

use crate::semconv as sc;

/// The provider named by an endpoint prefix (`openai.chat_completions` → `openai`).
pub fn provider_from_endpoint(endpoint: &str) -> Option<&'static str> {
    provider_from_prefix(endpoint.split('.').next().unwrap_or(""))
}

/// The provider named by a `provider/model` model name; `None` for a bare model name.
pub fn provider_from_model(model: &str) -> Option<&'static str> {
    let (prefix, _) = model.split_once('/')?;
    provider_from_prefix(prefix)
}

fn provider_from_prefix(prefix: &str) -> Option<&'static str> {
    match prefix.to_ascii_lowercase().as_str() {
        "openai" => Some(sc::PROVIDER_OPENAI),
        "anthropic" => Some(sc::PROVIDER_ANTHROPIC),
        "gemini" | "google" | "gcp.gemini" => Some(sc::PROVIDER_GEMINI),
        _ => None,
    }
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
        assert_eq!(provider_from_endpoint("mistral.chat"), None);
        assert_eq!(provider_from_model("openai/gpt-4o"), Some("openai"));
        assert_eq!(provider_from_model("gpt-4o"), None);
        assert_eq!(provider_from_model("ollama/llama3"), None);
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
