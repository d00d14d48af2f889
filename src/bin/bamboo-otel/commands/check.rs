//! `check`: validate without exporting.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use bamboo_otel::sources::db::MetricsDb;
use bamboo_otel::sources::jsonl::{self, JsonLines};
use bamboo_otel::MetricsEvent;

use crate::report::{Problems, EXIT_EXPORT_FAILED, EXIT_OK, EXIT_REJECTED};
use crate::Global;

fn is_sqlite(path: &Path) -> bool {
    let mut magic = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"SQLite format 3\0"
}

pub fn check(g: &Global, input: &Path) -> u8 {
    let name = input.display().to_string();
    let mut problems = Problems::new(g.max_errors);
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut count = |e: &MetricsEvent| *kinds.entry(e.variant()).or_default() += 1;
    if name != "-" && is_sqlite(input) {
        let db = match MetricsDb::open(input) {
            Ok(db) => db,
            Err(e) => {
                eprintln!("bamboo-otel: {e}");
                return EXIT_REJECTED;
            }
        };
        let scanned = db.scan(None, &mut |item| match item {
            Ok(events) => events.iter().for_each(&mut count),
            Err(p) => problems.report(&name, &p),
        });
        if let Err(e) = scanned {
            eprintln!("bamboo-otel: {e}");
            return EXIT_REJECTED;
        }
    } else {
        let reader = if name == "-" { jsonl::stdin() } else { jsonl::open(input) };
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{name}: cannot open: {e}");
                return EXIT_EXPORT_FAILED;
            }
        };
        for item in JsonLines::new(reader) {
            match item {
                Ok((_, e)) => count(&e),
                Err(p) => problems.report(&name, &p),
            }
        }
    }
    let total: u64 = kinds.values().sum();
    println!("{name}: {total} events, {} problems", problems.count);
    for (kind, n) in &kinds {
        println!("  {kind:<28} {n}");
    }
    if problems.count > 0 {
        EXIT_REJECTED
    } else {
        EXIT_OK
    }
}
