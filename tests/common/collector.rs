//! The OpenTelemetry Collector built by `scripts/backends.sh` (servers/otelcol), run with the configs in deploy/
//! exactly as shipped: tests only set the environment variables those configs read.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::backends::poll;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The collector binary's path, as `scripts/backends.sh bin otelcol` names it.
pub fn otelcol_bin() -> PathBuf {
    server_bin("otelcol")
}

/// A server binary `scripts/backends.sh` built (`jaeger`, `prometheus`, `promtool`, `otelcol`).
pub fn server_bin(name: &str) -> PathBuf {
    let out = Command::new(repo().join("scripts/backends.sh")).args(["bin", name]).output().unwrap();
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "{} is not built: run scripts/backends.sh start", path.display());
    path
}

/// One running collector; killed when dropped.
pub struct Collector {
    pub name: String,
    /// Where its OTLP gRPC receiver and its own metrics (:8888) listen.
    pub host: String,
    config: &'static str,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Collector {
    /// Starts `deploy/<config>` with `env`, its receivers on `host`, and waits until it accepts OTLP.
    pub fn start(
        name: &str,
        config: &'static str,
        host: &str,
        env: &[(&str, &str)],
        log_dir: &std::path::Path,
    ) -> Self {
        let mut c = Collector {
            name: name.to_owned(),
            host: host.to_owned(),
            config,
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            child: None,
            log: log_dir.join(format!("{name}.log")),
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(otelcol_bin())
            .arg("--config")
            .arg(repo().join("deploy").join(self.config))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let addr = format!("{}:4317", self.host);
        poll(60, &format!("{} accepting OTLP on {addr} (log: {})", self.name, self.log.display()), || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited with {status}: {}", self.name, std::fs::read_to_string(&self.log).unwrap());
            }
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).ok()
        });
    }

    /// SIGKILL: what it held in memory is gone, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The collector's own metrics (Prometheus text on :8888) as (metric name, line, value), comments left out.
    fn scrape(&self) -> Vec<(String, String, f64)> {
        let url = format!("http://{}:8888/metrics", self.host);
        let text = ureq::get(&url).timeout(Duration::from_secs(5)).call().unwrap().into_string().unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let value = l.rsplit(' ').next()?.parse::<f64>().ok()?;
                Some((l.split(['{', ' ']).next()?.to_owned(), l.to_owned(), value))
            })
            .collect()
    }

    /// Its own metrics whose names start with `prefix`, each summed over its series.
    pub fn own_metrics(&self, prefix: &str) -> std::collections::BTreeMap<String, f64> {
        let mut out = std::collections::BTreeMap::new();
        for (name, _, value) in self.scrape().into_iter().filter(|(n, _, _)| n.starts_with(prefix)) {
            *out.entry(name).or_default() += value;
        }
        out
    }

    /// The sum of `name`'s series whose labels contain `label` (`policy="errors"`, say; "" for all).
    pub fn own_series(&self, name: &str, label: &str) -> f64 {
        self.scrape().iter().filter(|(n, line, _)| n == name && line.contains(label)).map(|(_, _, v)| v).sum()
    }

    /// `name` summed over all its series (0 while it has none).
    pub fn own_metric(&self, name: &str) -> f64 {
        self.own_series(name, "")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}
