//! Plays a realistic agent session through the translator and prints the span tree and metric totals.
//! No collector needed:
//!
//! ```text
//! cargo run -p quickstart                 # a built-in session: rounds, tool calls, a failed round
//! cargo run -p quickstart -- events.jsonl # your own JSON lines (one MetricsEvent each)
//! ```

use bamboo_otel::console::{render_tree, MetricTotals};
use bamboo_otel::demo;
use bamboo_otel::events::MetricsEvent;
use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: Vec<MetricsEvent> = match std::env::args().nth(1) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)?;
            let mut events = Vec::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match MetricsEvent::from_json(line) {
                    Ok(e) => events.push(e),
                    Err(e) => eprintln!("{path}:{}: {e}", i + 1),
                }
            }
            events
        }
        None => demo::agent_session(chrono::Utc::now()),
    };

    // Replaying recorded events: idle time is measured on the events' own clock.
    let mut translator = Translator::new(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() });
    let mut out = Output::new();
    let now = chrono::Utc::now();
    for event in &events {
        translator.process(event, now, &mut out);
    }
    translator.finish(now, &mut out);

    let mut totals = MetricTotals::new();
    totals.extend(&out.metrics);
    println!("== {} events -> {} spans\n", events.len(), out.spans.len());
    print!("{}", render_tree(&out.spans));
    println!("== metrics");
    print!("{}", totals.render());
    Ok(())
}
