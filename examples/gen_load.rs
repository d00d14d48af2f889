//! Writes benchmark input of a given size: JSON lines of the benchmark mix, or a `metrics.db` with the same
//! sessions as rows (schema per WIRE.md). Used by `scripts/bench.sh`.
//!
//! ```text
//! cargo run --release --features sources --example gen_load -- jsonl /tmp/big.jsonl 1024
//! cargo run --release --features sources --example gen_load -- db /tmp/metrics.db 1024
//! ```

use std::io::{BufWriter, Write};

#[path = "../tests/common/metrics_db.rs"]
mod metrics_db;

use metrics_db::{apply, SCHEMA};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (kind, path, mb) = match &args[..] {
        [_, k, p, mb] => (k.as_str(), p.as_str(), mb.parse::<u64>()?),
        _ => return Err("usage: gen_load jsonl|db PATH SIZE_MB".into()),
    };
    let target = mb << 20;
    let start = chrono::Utc::now() - chrono::Duration::days(20);
    let mut written = 0u64;
    let mut batch = 0i64;
    match kind {
        "jsonl" => {
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
            while written < target {
                for e in bamboo_otel::demo::load_mix(1_000, start + chrono::Duration::seconds(batch * 2_000)) {
                    let line = e.to_json();
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                    written += line.len() as u64 + 1;
                }
                batch += 1;
            }
            out.flush()?;
        }
        "db" => {
            let _ = std::fs::remove_file(path);
            let mut db = rusqlite::Connection::open(path)?;
            // Fast to write; switched to WAL (as Bamboo runs it) at the end.
            db.pragma_update(None, "journal_mode", "off")?;
            db.pragma_update(None, "synchronous", "off")?;
            db.execute_batch(SCHEMA)?;
            while std::fs::metadata(path)?.len() < target {
                let tx = db.transaction()?;
                for e in bamboo_otel::demo::load_mix(2_000, start + chrono::Duration::seconds(batch * 4_000)) {
                    apply(&tx, &e)?;
                }
                tx.commit()?;
                batch += 1;
            }
            db.pragma_update(None, "journal_mode", "wal")?;
        }
        _ => return Err("kind must be jsonl or db".into()),
    }
    eprintln!("{path}: {} MiB", std::fs::metadata(path)?.len() >> 20);
    Ok(())
}
