//! Where events come from besides `record()`: JSON lines (files, stdin, gzip, follow mode) and Bamboo's SQLite
//! `metrics.db`. The `bamboo-otel` CLI is a thin shell over these; applications can use them directly.
//!
//! Every source reports bad input as a [`Problem`] naming where it is (file and line, or table and row) and goes
//! on with the rest.
//!
//! ```no_run
//! use bamboo_otel::sources::jsonl::JsonLines;
//! let bridge = bamboo_otel::Bridge::from_env().unwrap();
//! let file = bamboo_otel::sources::jsonl::open("events.jsonl".as_ref()).unwrap();
//! for item in JsonLines::new(file) {
//!     match item {
//!         Ok((_line, event)) => { let _ = bridge.record_wait(event); }
//!         Err(problem) => eprintln!("events.jsonl:{problem}"),
//!     }
//! }
//! bridge.shutdown(std::time::Duration::from_secs(10));
//! ```

pub mod checkpoint;
pub mod db;
pub mod follow;
pub mod jsonl;

use std::fmt;

/// One piece of input that could not be used, and why. `line` is 1-based; 0 when not line-oriented (a database
/// row, whose table and rowid are then in the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    /// Low-cardinality code: `invalid_json`, `unknown_variant`, `missing_field`, `invalid_field`,
    /// `invalid_utf8`, `line_too_long`, `invalid_row`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, " {} ({})", self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.line, self.message, self.code)
        }
    }
}
