//! What tokens cost: a price table (the one shipped in `prices.toml`, plus the user's) and the providers' rules
//! for applying it. Pure: the table is parsed once when the bridge is configured.
//!
//! ```
//! use bamboo_otel::events::{TokenDetails, TokenUsage};
//! use bamboo_otel::translate::cost::PriceTable;
//!
//! let table = PriceTable::from_toml(r#"
//!     [[price]]
//!     provider = "anthropic"
//!     model = "claude-sonnet-4*"
//!     input = 3.0
//!     output = 15.0
//!     cache_read = 0.3
//!     source = "https://www.anthropic.com/pricing"
//!     date = "2025-09-29"
//! "#).unwrap();
//! let row = table.find("anthropic", "claude-sonnet-4-5").unwrap();
//! let usage = TokenUsage { prompt_tokens: 1_000_000, completion_tokens: 0, total_tokens: 1_000_000 };
//! let details = TokenDetails { cache_read_input_tokens: Some(400_000), ..Default::default() };
//! // 600k uncached at $3/M plus 400k cache reads at $0.30/M, not $3 on all of it.
//! assert!((row.cost(usage, Some(&details)).total() - 1.92).abs() < 1e-9);
//! ```

use serde::Deserialize;

use crate::events::{TokenDetails, TokenUsage};
use crate::semconv as sc;

/// The table shipped with the crate.
pub const BUILTIN_PRICES: &str = include_str!("prices.toml");

/// USD rounded to 1e-10 (far below any price step), so sums print as 0.00101375, not 0.0010137500000000001.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e10).round() / 1e10
}

/// One row: a provider, a model glob and USD per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// `gen_ai.provider.name` the row applies to.
    pub provider: String,
    /// Glob on the model name without any `provider/` prefix.
    pub model: String,
    pub input: f64,
    pub output: f64,
    /// Part of input, priced instead of `input`; `None` prices it as input.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Part of input, priced instead of `input`; `None` prices it as input.
    #[serde(default)]
    pub cache_creation: Option<f64>,
    /// Separate provider metadata, charged only when given.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Part of output, priced instead of `output`; `None` prices it as output.
    #[serde(default)]
    pub reasoning: Option<f64>,
    /// Where the price was read.
    pub source: String,
    /// When it was read.
    pub date: String,
}

/// Why a price table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("not a price table: {0}")]
    Parse(String),
    #[error("price row {row} ({model}): {problem}")]
    Row { row: usize, model: String, problem: &'static str },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    price: Vec<Price>,
}

/// Prices by provider and model; the first matching row wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    rows: Vec<Price>,
}

/// What one operation cost, by `gen_ai.token.type`. Types with no tokens are absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    pub parts: Vec<(&'static str, f64)>,
}

impl Cost {
    pub fn total(&self) -> f64 {
        round_usd(self.parts.iter().map(|(_, usd)| usd).sum())
    }
}

impl PriceTable {
    /// The shipped table ([`BUILTIN_PRICES`]).
    pub fn builtin() -> PriceTable {
        PriceTable::from_toml(BUILTIN_PRICES).expect("the shipped price table parses (tested)")
    }

    /// Parses a table. Every row needs a provider, a model, input and output rates, a source and a date; rates are
    /// finite and not negative.
    pub fn from_toml(text: &str) -> Result<PriceTable, PriceError> {
        let file: File = toml::from_str(text).map_err(|e| PriceError::Parse(e.to_string()))?;
        for (i, p) in file.price.iter().enumerate() {
            let bad = |problem| PriceError::Row { row: i + 1, model: p.model.clone(), problem };
            if p.provider.is_empty() || p.model.is_empty() {
                return Err(bad("provider and model must not be empty"));
            }
            if p.source.trim().is_empty() || p.date.trim().is_empty() {
                return Err(bad("every price needs a source and a date"));
            }
            let rates = [Some(p.input), Some(p.output), p.cache_read, p.cache_creation, p.cache_write, p.reasoning];
            if rates.into_iter().flatten().any(|r| !r.is_finite() || r < 0.0) {
                return Err(bad("rates are USD per million tokens: finite and not negative"));
            }
        }
        Ok(PriceTable { rows: file.price })
    }

    /// `mine` first, then this table: the user's rows win where both match.
    pub fn overridden_by(self, mine: PriceTable) -> PriceTable {
        let mut rows = mine.rows;
        rows.extend(self.rows);
        PriceTable { rows }
    }

    pub fn rows(&self) -> &[Price] {
        &self.rows
    }

    /// The price of `model` served by `provider`, matched on the model name without a `provider/` prefix.
    pub fn find(&self, provider: &str, model: &str) -> Option<&Price> {
        let bare = super::genai::bare_model(model);
        self.rows.iter().find(|p| p.provider == provider && crate::redact::glob(&p.model, bare))
    }
}

impl Price {
    /// The cost of `usage` (with `details` when the provider reported them), by token type.
    pub fn cost(&self, usage: TokenUsage, details: Option<&TokenDetails>) -> Cost {
        let d = details.copied().unwrap_or_default();
        let per = |tokens: u64, rate: f64| round_usd(tokens as f64 * rate / 1_000_000.0);
        let cache_read = d.cache_read_input_tokens.unwrap_or(0).min(usage.prompt_tokens);
        let cache_creation = d.cache_creation_input_tokens.unwrap_or(0).min(usage.prompt_tokens - cache_read);
        let uncached = usage.prompt_tokens - cache_read - cache_creation;
        let reasoning = d.reasoning_output_tokens.unwrap_or(0).min(usage.completion_tokens);
        let (plain_output, reasoning_rate) = match self.reasoning {
            Some(rate) => (usage.completion_tokens - reasoning, Some(rate)),
            None => (usage.completion_tokens, None),
        };
        let mut parts = Vec::with_capacity(6);
        let mut push = |kind, tokens: u64, rate: f64| {
            if tokens > 0 {
                parts.push((kind, per(tokens, rate)));
            }
        };
        push(sc::TOKEN_TYPE_INPUT, uncached, self.input);
        push(sc::TOKEN_TYPE_CACHE_READ, cache_read, self.cache_read.unwrap_or(self.input));
        push(sc::TOKEN_TYPE_CACHE_CREATION, cache_creation, self.cache_creation.unwrap_or(self.input));
        if let Some(rate) = self.cache_write {
            push(sc::TOKEN_TYPE_CACHE_WRITE, d.cache_write_input_tokens.unwrap_or(0), rate);
        }
        push(sc::TOKEN_TYPE_OUTPUT, plain_output, self.output);
        if let Some(rate) = reasoning_rate {
            push(sc::TOKEN_TYPE_REASONING, reasoning, rate);
        }
        Cost { parts }
    }

    /// What the cache reads would have cost at the input rate, minus what they cost.
    pub fn cache_savings(&self, details: Option<&TokenDetails>) -> f64 {
        let read = details.and_then(|d| d.cache_read_input_tokens).unwrap_or(0);
        round_usd(read as f64 * (self.input - self.cache_read.unwrap_or(self.input)) / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage { prompt_tokens: input, completion_tokens: output, total_tokens: input + output }
    }

    fn row(extra: &str) -> Price {
        let text = format!(
            "[[price]]\nprovider='p'\nmodel='m*'\ninput=2.0\noutput=10.0\n{extra}\nsource='s'\ndate='2026-01-01'\n"
        );
        PriceTable::from_toml(&text).unwrap().rows[0].clone()
    }

    fn parts(c: &Cost) -> Vec<(&'static str, f64)> {
        c.parts.iter().map(|(k, v)| (*k, (v * 1e9).round() / 1e9)).collect()
    }

    #[test]
    fn builtin_table_parses_and_every_row_has_source_and_date() {
        let t = PriceTable::builtin();
        assert!(t.rows().len() >= 10);
        assert!(t.rows().iter().all(|r| r.source.starts_with("https://") && r.date.len() == 10));
        assert_eq!(t.find("anthropic", "claude-opus-4-5-20251101").unwrap().input, 5.0);
        assert_eq!(t.find("anthropic", "anthropic/claude-opus-4-1").unwrap().input, 15.0);
        assert_eq!(t.find("openai", "gpt-4o-mini").unwrap().input, 0.15);
        assert_eq!(t.find("openai", "gpt-4o").unwrap().input, 2.5);
        assert!(t.find("anthropic", "gpt-4o").is_none(), "provider must match");
        assert!(t.find("openai", "llama3").is_none());
    }

    #[test]
    fn plain_input_and_output() {
        // 1M in at $2, 0.5M out at $10.
        assert_eq!(parts(&row("").cost(usage(1_000_000, 500_000), None)), vec![("input", 2.0), ("output", 5.0)]);
    }

    #[test]
    fn cache_read_and_creation_replace_input_not_add_to_it() {
        let d = TokenDetails {
            cache_read_input_tokens: Some(600_000),
            cache_creation_input_tokens: Some(100_000),
            ..Default::default()
        };
        let c = row("cache_read=0.2\ncache_creation=2.5").cost(usage(1_000_000, 0), Some(&d));
        // 300k uncached × 2 + 600k × 0.2 + 100k × 2.5
        assert_eq!(parts(&c), vec![("input", 0.6), ("cache_read", 0.12), ("cache_creation", 0.25)]);
        // Without their own rates they cost what input costs: the total is as if uncached.
        assert!((row("").cost(usage(1_000_000, 0), Some(&d)).total() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cache_write_is_not_a_cache_creation() {
        let d = TokenDetails { cache_write_input_tokens: Some(200_000), ..Default::default() };
        // No rate: free (OpenAI), and input is untouched.
        assert_eq!(parts(&row("").cost(usage(1_000_000, 0), Some(&d))), vec![("input", 2.0)]);
        // A rate: charged on its own, still not taken out of input.
        let c = row("cache_write=1.0").cost(usage(1_000_000, 0), Some(&d));
        assert_eq!(parts(&c), vec![("input", 2.0), ("cache_write", 0.2)]);
    }

    #[test]
    fn reasoning_is_output_unless_priced_apart() {
        let d = TokenDetails { reasoning_output_tokens: Some(400_000), ..Default::default() };
        assert_eq!(parts(&row("").cost(usage(0, 1_000_000), Some(&d))), vec![("output", 10.0)]);
        let c = row("reasoning=20.0").cost(usage(0, 1_000_000), Some(&d));
        assert_eq!(parts(&c), vec![("output", 6.0), ("reasoning", 8.0)]);
    }

    #[test]
    fn details_larger_than_the_usage_are_capped() {
        let d = TokenDetails { cache_read_input_tokens: Some(5_000_000), ..Default::default() };
        assert_eq!(parts(&row("cache_read=0.2").cost(usage(1_000_000, 0), Some(&d))), vec![("cache_read", 0.2)]);
    }

    #[test]
    fn savings_of_cache_reads() {
        let d = TokenDetails { cache_read_input_tokens: Some(1_000_000), ..Default::default() };
        assert!((row("cache_read=0.2").cache_savings(Some(&d)) - 1.8).abs() < 1e-12);
        assert_eq!(row("").cache_savings(Some(&d)), 0.0);
    }

    #[test]
    fn rows_without_source_or_date_or_with_bad_rates_are_refused() {
        let no_date = "[[price]]\nprovider='p'\nmodel='m'\ninput=1.0\noutput=1.0\nsource='s'\ndate=''\n";
        assert!(matches!(PriceTable::from_toml(no_date), Err(PriceError::Row { row: 1, .. })));
        let negative = "[[price]]\nprovider='p'\nmodel='m'\ninput=-1.0\noutput=1.0\nsource='s'\ndate='d'\n";
        assert!(PriceTable::from_toml(negative).is_err());
        assert!(PriceTable::from_toml("[[price]]\nprovider='p'\nmodel='m'\ninput=1.0\noutput=1.0\n").is_err());
        assert!(PriceTable::from_toml("[[price]]\nnonsense=1\n").is_err());
    }

    #[test]
    fn the_users_rows_win() {
        let mine = PriceTable::from_toml(
            "[[price]]\nprovider='openai'\nmodel='gpt-4o'\ninput=1.0\noutput=1.0\nsource='contract'\ndate='2026-11-01'\n",
        )
        .unwrap();
        let t = PriceTable::builtin().overridden_by(mine);
        assert_eq!(t.find("openai", "gpt-4o").unwrap().input, 1.0);
        assert_eq!(t.find("openai", "gpt-4o-2024-08-06").unwrap().input, 2.5);
    }
}
