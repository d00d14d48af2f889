//! A cap on distinct attribute sets per instrument, applied before the SDK sees a measurement.
//!
//! The SDK folds series beyond its limit into `otel.metric.overflow=true` too, but silently. Here the fold is
//! counted (`bamboo_otel.metric.overflow{metric}`) and logged once per instrument, and memory stays bounded
//! by `limit × instruments` fingerprints whatever the input (10⁶ distinct tool names, say). Under delta
//! temporality the SDK forgets its series at each collection, and so does this guard.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::hash::Seeded;
use crate::semconv::{self as sc, Instrument};
use crate::translate::{KeyValue, MetricUpdate};

pub(crate) struct CardinalityGuard {
    limit: usize,
    /// Fingerprints of the attribute sets admitted so far, per instrument (indexed like `Instrument::ALL`).
    seen: Vec<HashSet<u64, Seeded>>,
    logged: Vec<bool>,
    hasher: Seeded,
}

impl CardinalityGuard {
    pub(crate) fn new(limit: usize) -> Self {
        let n = Instrument::ALL.len();
        CardinalityGuard {
            limit: limit.max(1),
            seen: (0..n).map(|_| HashSet::default()).collect(),
            logged: vec![false; n],
            hasher: Seeded::default(),
        }
    }

    /// Admits `m` as it is, or folds it into the overflow series; returns the instrument that overflowed.
    pub(crate) fn admit(&mut self, m: &mut MetricUpdate) -> Option<Instrument> {
        if m.attributes.is_empty() {
            return None; // The SDK does not count the empty set against its limit either.
        }
        let i = m.instrument as usize;
        let fp = self.hasher.hash_one(&m.attributes);
        let seen = &mut self.seen[i];
        if seen.contains(&fp) || seen.len() < self.limit && seen.insert(fp) {
            return None;
        }
        m.attributes = vec![KeyValue::new(sc::OTEL_METRIC_OVERFLOW, true)];
        if !std::mem::replace(&mut self.logged[i], true) {
            tracing::warn!(target: "bamboo_otel", metric = m.instrument.name(), limit = self.limit, "metric cardinality limit reached: further attribute sets are folded into otel.metric.overflow=true (counted in bamboo_otel.metric.overflow; logged once per metric)");
        }
        Some(m.instrument)
    }

    /// Forgets the admitted sets (after a delta collection, when the SDK has forgotten them too).
    pub(crate) fn reset(&mut self) {
        self.seen.iter_mut().for_each(HashSet::clear);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::MetricValue;

    fn tool(name: String) -> MetricUpdate {
        MetricUpdate {
            instrument: Instrument::ToolCalls,
            value: MetricValue::U64(1),
            attributes: vec![KeyValue::new(sc::GEN_AI_TOOL_NAME, name)],
            span: None,
        }
    }

    #[test]
    fn beyond_the_limit_new_sets_fold_and_known_sets_pass() {
        let mut g = CardinalityGuard::new(3);
        for i in 0..3 {
            assert_eq!(g.admit(&mut tool(format!("t{i}"))), None);
        }
        let mut late = tool("t9".into());
        assert_eq!(g.admit(&mut late), Some(Instrument::ToolCalls));
        assert_eq!(late.attributes, vec![KeyValue::new(sc::OTEL_METRIC_OVERFLOW, true)]);
        assert_eq!(g.admit(&mut tool("t1".into())), None, "a known set still passes");
        // Other instruments have their own budget.
        let mut other = tool("t9".into());
        other.instrument = Instrument::ToolDuration;
        assert_eq!(g.admit(&mut other), None);
        g.reset();
        assert_eq!(g.admit(&mut tool("t9".into())), None);
    }
}
