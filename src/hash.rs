//! One fast hasher for the crate's internal maps: the translator's u64 keys (already FNV/SplitMix digests of
//! ids) and the exporter's per-series counter sums. `foldhash`'s fast variant, seeded per map from the process's
//! random state: a fraction of SipHash's cost on short keys, and still unpredictable to whoever chooses the ids
//! and attribute values (tool names come from the model).

pub(crate) type Seeded = foldhash::fast::RandomState;
