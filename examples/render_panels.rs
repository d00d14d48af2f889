//! Renders the dashboard's key panels as PNG plots (docs/img/) from real query results: runs a few minutes of
//! agent traffic through a bridge into VictoriaMetrics, then runs each panel's own PromQL (read from
//! dashboards/bamboo-agents.json) through the range-query API and plots it.
//!
//! ```text
//! scripts/backends.sh start
//! cargo run --release --example render_panels            # RENDER_SECS=180 by default
//! ```

use std::time::{Duration, Instant};

use bamboo_otel::{Bridge, ExporterKind, Protocol};
use plotters::prelude::*;
use serde_json::Value;

const VM: &str = "http://127.0.0.1:8428";
const PANELS: &[(&str, &str, &str)] = &[
    ("Tokens per second by model and type", "tokens.png", "tokens / s"),
    ("LLM round latency (p50, p95, p99)", "round-latency.png", "seconds"),
    ("Tool latency p95 by tool", "tool-latency.png", "seconds"),
    ("Forwarded requests by endpoint and status code", "forwarded.png", "requests / s"),
    ("Events received by kind", "bridge-events.png", "events / s"),
];

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends sessions for `secs` seconds at a load that rises and falls, flushing metrics every 2 s.
fn traffic(service: &str, secs: u64) {
    let bridge = Bridge::builder()
        .service_name(service)
        .traces_exporter(ExporterKind::None)
        .metrics_endpoint(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf)
        .metric_interval(Duration::from_secs(2))
        .build()
        .expect("bridge");
    let started = Instant::now();
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        // 1 to 5 sessions a second, in waves; a mix of the demo session (errors, several tools) and the load mix.
        let n = 1 + (((tick as f64) / 15.0).sin().abs() * 4.0) as usize;
        for _ in 0..n {
            for e in bamboo_otel::demo::agent_session(chrono::Utc::now() - chrono::Duration::seconds(40)) {
                bridge.record(e);
            }
        }
        for e in bamboo_otel::demo::load_mix(n, chrono::Utc::now() - chrono::Duration::seconds(10)) {
            bridge.record(e);
        }
        tick += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    bridge.shutdown(Duration::from_secs(30));
}

type Series = (String, Vec<(f64, f64)>);

fn query_range(expr: &str, start: i64, end: i64) -> Vec<Series> {
    let url = format!("{VM}/api/v1/query_range?query={}&start={start}&end={end}&step=5", urlencode(expr));
    let v: Value = ureq::get(&url).call().expect("query").into_json().expect("json");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels: Vec<String> =
                r["metric"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_owned()).collect();
            let points = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| Some((p[0].as_f64()? - start as f64, p[1].as_str()?.parse::<f64>().ok()?)))
                .filter(|(_, y)| y.is_finite())
                .collect();
            (labels.join(" "), points)
        })
        .collect()
}

fn plot(path: &str, title: &str, unit: &str, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0, f64::max);
    let y_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.15 + 1e-9;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("seconds").y_desc(unit).label_style(("sans-serif", 13)).draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| "font")?;
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string("dashboards/bamboo-agents.json")?)?;
    let secs = std::env::var("RENDER_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(180);
    let service = format!("render-{}", uuid::Uuid::new_v4().simple());
    let start = chrono::Utc::now().timestamp();
    eprintln!("sending {secs} s of traffic as service {service}");
    traffic(&service, secs);
    ureq::post(&format!("{VM}/internal/force_flush")).call()?;
    let end = chrono::Utc::now().timestamp();
    std::fs::create_dir_all("docs/img")?;
    for (title, file, unit) in PANELS {
        let panel = dashboard["panels"].as_array().unwrap().iter().find(|p| p["title"] == *title).ok_or(*title)?;
        let mut series = Vec::new();
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap().replace("$service", &service).replace("$__rate_interval", "30s");
            let mut found = query_range(&expr, start, end);
            if found.len() == 1 && found[0].0.is_empty() {
                found[0].0 = t["legendFormat"].as_str().unwrap_or("").to_owned();
            }
            series.extend(found);
        }
        let path = format!("docs/img/{file}");
        plot(&path, title, unit, &series)?;
        eprintln!("wrote {path} ({} series)", series.len());
    }
    Ok(())
}
