//! Checkpoints for long-running sources: where to resume, and the start events still waiting for their
//! completion, so a restart neither re-sends what was exported nor loses a span that straddles it.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

use crate::events::{ChatEvent, ForwardEvent, MetricsEvent};

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename): a crash leaves the old
/// checkpoint or the new one, never half of one.
pub fn save<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(value).map_err(io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads a checkpoint; `Ok(None)` when there is none yet.
pub fn load<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The start events (sessions, rounds, requests) seen without their completion yet, as JSON lines. Kept in the
/// checkpoint and replayed into the translator after a restart, so a completion read after the restart still
/// finds its start. Capped: beyond `cap` the oldest is forgotten and counted.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub struct OpenStarts {
    starts: HashMap<String, (u64, String)>,
    next: u64,
    #[serde(default)]
    pub forgotten: u64,
}

impl OpenStarts {
    pub const DEFAULT_CAP: usize = 100_000;

    /// Notes a start, or clears it on its completion.
    pub fn observe(&mut self, event: &MetricsEvent) {
        match event {
            MetricsEvent::Chat(ChatEvent::SessionStarted { session_id, .. }) => {
                self.open(format!("s/{session_id}"), event)
            }
            MetricsEvent::Chat(ChatEvent::SessionCompleted { session_id, .. }) => {
                self.close(&format!("s/{session_id}"))
            }
            MetricsEvent::Chat(ChatEvent::RoundStarted { round_id, .. }) => self.open(format!("r/{round_id}"), event),
            MetricsEvent::Chat(ChatEvent::RoundCompleted { round_id, .. }) => self.close(&format!("r/{round_id}")),
            MetricsEvent::Forward(ForwardEvent::RequestStarted { request_id, .. }) => {
                self.open(format!("f/{request_id}"), event)
            }
            MetricsEvent::Forward(ForwardEvent::RequestCompleted { request_id, .. }) => {
                self.close(&format!("f/{request_id}"))
            }
            _ => {}
        }
    }

    fn open(&mut self, key: String, event: &MetricsEvent) {
        self.next += 1;
        self.starts.insert(key, (self.next, event.to_json()));
        if self.starts.len() > Self::DEFAULT_CAP {
            if let Some(oldest) = self.starts.iter().min_by_key(|(_, (n, _))| *n).map(|(k, _)| k.clone()) {
                self.starts.remove(&oldest);
                self.forgotten += 1;
            }
        }
    }

    fn close(&mut self, key: &str) {
        self.starts.remove(key);
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The open starts, oldest first.
    pub fn events(&self) -> Vec<MetricsEvent> {
        let mut v: Vec<_> = self.starts.values().collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().filter_map(|(_, json)| MetricsEvent::from_json(json).ok()).collect()
    }
}
