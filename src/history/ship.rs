//! Sends [`Windows`] over our own OTLP wire, request after request in the order [`otlp::requests`] gives (a
//! series' points in time order), and says what arrived.

use super::otlp::{self, Running, Temporality};
use super::Windows;
use crate::wire::{FailReason, Wire};

/// What a [`send`] delivered, and what it did not (every point accounted for:
/// `points = delivered + rejected + failed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shipped {
    pub requests: usize,
    /// Points encoded.
    pub points: u64,
    /// Points the backend took.
    pub delivered: u64,
    /// Points the backend refused: OTLP partial success, or a request refused whole for good (an HTTP 400 for
    /// samples older than a Prometheus accepts).
    pub rejected: u64,
    /// Points never delivered: the backend stayed unreachable (the requests after the first such failure are
    /// not tried: each would wait out the same retries).
    pub failed: u64,
    /// The first thing the backend said of a refusal or failure, for the log line.
    pub first_error: Option<String>,
}

impl std::ops::AddAssign<&Shipped> for Shipped {
    fn add_assign(&mut self, s: &Shipped) {
        self.requests += s.requests;
        self.points += s.points;
        self.delivered += s.delivered;
        self.rejected += s.rejected;
        self.failed += s.failed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&s.first_error);
        }
    }
}

/// Encodes `w` (points of at most `max_points` per request), continuing the series `running` holds (see
/// [`otlp::encode`]; a one-shot run passes a fresh one), and sends it.
pub async fn send(
    w: &Windows,
    wire: &Wire,
    resource: &[(String, String)],
    temporality: Temporality,
    max_points: usize,
    running: &mut Running,
) -> Shipped {
    let mut s = Shipped::default();
    let mut unavailable = false;
    for r in otlp::encode(w, resource, temporality, max_points, running) {
        s.requests += 1;
        let n = r.points as u64;
        s.points += n;
        if unavailable {
            s.failed += n;
            continue;
        }
        match wire.send_metrics(&r.body).await {
            Ok(a) => {
                let rejected = a.rejected.min(n);
                s.rejected += rejected;
                s.delivered += n - rejected;
                if let (Some(m), None) = (a.message, &s.first_error) {
                    s.first_error = Some(format!("partial success: {m}"));
                }
            }
            Err(f) => {
                match f.reason {
                    FailReason::Rejected => s.rejected += n,
                    FailReason::Unavailable | FailReason::ServerError => {
                        s.failed += n;
                        unavailable = true;
                    }
                }
                s.first_error.get_or_insert_with(|| f.to_string());
            }
        }
    }
    s
}
