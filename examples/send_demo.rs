//! Sends the demo agent session to the OTLP backend configured by the `OTEL_*` environment, then prints the
//! shutdown report. `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.2:4317 cargo run --example send_demo` sends it to
//! the Jaeger that `scripts/backends.sh` starts.
fn main() {
    let bridge = bamboo_otel::Bridge::from_env().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2)
    });
    let events = bamboo_otel::demo::agent_session(chrono::Utc::now() - chrono::Duration::minutes(1));
    for event in events {
        bridge.record(event);
    }
    println!("{:#?}", bridge.shutdown(std::time::Duration::from_secs(10)));
}
