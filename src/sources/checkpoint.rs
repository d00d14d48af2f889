//! Checkpoints for long-running sources: where to resume, and the start events still waiting for their
//! completion, so a restart neither re-sends what was exported nor loses a span that straddles it.

use std::collections::{HashMap, HashSet, VecDeque};
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
///
/// Also the event ids of the latest [`Self::ENDS_KEPT`] terminal events (completions, tool calls): the
/// translator's duplicate detection does not survive a restart, and a duplicate of a completion read before the
/// checkpoint would otherwise be emitted again after it, as a second, incomplete span with the same id.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub struct OpenStarts {
    starts: HashMap<String, (u64, String)>,
    next: u64,
    #[serde(default)]
    pub forgotten: u64,
    #[serde(default)]
    ends: VecDeque<String>,
    /// `ends` as a set, rebuilt after loading.
    #[serde(skip)]
    ends_index: HashSet<String>,
}

impl OpenStarts {
    pub const DEFAULT_CAP: usize = 100_000;
    pub const ENDS_KEPT: usize = 4096;

    /// Notes a start, or clears it on its completion. Returns `false` for a terminal event already seen (its
    /// event id is among the latest terminal events): the caller skips it as a duplicate.
    pub fn observe(&mut self, event: &MetricsEvent) -> bool {
        let terminal = matches!(
            event,
            MetricsEvent::Chat(
                ChatEvent::SessionCompleted { .. } | ChatEvent::RoundCompleted { .. } | ChatEvent::ToolCalled { .. }
            ) | MetricsEvent::Forward(ForwardEvent::RequestCompleted { .. })
        );
        if terminal {
            if let Some(meta) = event.meta() {
                if self.ends_index.len() != self.ends.len() {
                    self.ends_index = self.ends.iter().cloned().collect();
                }
                if !self.ends_index.insert(meta.event_id.clone()) {
                    return false;
                }
                self.ends.push_back(meta.event_id.clone());
                if self.ends.len() > Self::ENDS_KEPT {
                    if let Some(old) = self.ends.pop_front() {
                        self.ends_index.remove(&old);
                    }
                }
            }
        }
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
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventMeta, SessionStatus};

    #[test]
    fn a_completion_seen_before_the_checkpoint_is_a_duplicate_after_it() {
        let done = |id: &str| -> MetricsEvent {
            ChatEvent::SessionCompleted {
                meta: EventMeta::at(id, chrono::Utc::now(), None),
                session_id: "s".into(),
                status: SessionStatus::Completed,
            }
            .into()
        };
        let mut open = OpenStarts::default();
        assert!(open.observe(&done("e1")));
        let mut restored: OpenStarts = serde_json::from_str(&serde_json::to_string(&open).unwrap()).unwrap();
        assert!(!restored.observe(&done("e1")), "a duplicate across the restart");
        assert!(restored.observe(&done("e2")));
        for i in 0..OpenStarts::ENDS_KEPT {
            restored.observe(&done(&format!("x{i}")));
        }
        assert!(restored.observe(&done("e1")), "beyond the window it is forgotten");
    }
}
