//! Follow a JSON-lines file as it grows, like `tail -F`: survives rotation (rename and re-create) and
//! truncation, and resumes from a [`Position`] after a restart.
//!
//! Only complete lines are consumed: a line still being written stays in the file until its newline arrives, so
//! the position never points into the middle of a line. After a rotation the old file is read to its end
//! (its last line even without a newline) before the new one is started.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::jsonl::{parse_line, DEFAULT_MAX_LINE};
use super::Problem;
use crate::events::MetricsEvent;

/// Which file (device and inode) and how far into it: what a checkpoint stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    /// Bytes of complete lines consumed.
    pub offset: u64,
    /// Lines consumed (for error messages).
    pub line: u64,
}

/// What happened to the file, for the summary and the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FollowStats {
    pub rotations: u64,
    pub truncations: u64,
}

pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    pos: Position,
    partial: Vec<u8>,
    /// The current line is over the limit: its bytes are skipped until the newline.
    skipping: Option<u64>,
    max_line: usize,
    /// Lines consumed since this follower started, across files.
    consumed: u64,
    pub stats: FollowStats,
}

fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// A file in `path`'s directory with this device and inode: where a rotated file went while we were down.
fn find_by_identity(path: &Path, id: (u64, u64)) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && identity(&m) == id))
}

impl Follower {
    /// Starts following `path`: from `resume` when it still names this file (or a rotated copy of it in the same
    /// directory), else from the beginning. The file need not exist yet.
    pub fn open(path: &Path, resume: Option<Position>) -> io::Result<Follower> {
        let mut f = Follower {
            path: path.to_owned(),
            file: None,
            pos: Position { dev: 0, ino: 0, offset: 0, line: 0 },
            partial: Vec::new(),
            skipping: None,
            max_line: DEFAULT_MAX_LINE,
            consumed: 0,
            stats: FollowStats::default(),
        };
        if let Some(r) = resume {
            let current = std::fs::metadata(path).ok().map(|m| identity(&m));
            let source = if current == Some((r.dev, r.ino)) {
                Some(path.to_owned())
            } else {
                find_by_identity(path, (r.dev, r.ino))
            };
            if let Some(p) = source {
                let mut file = File::open(&p)?;
                let len = file.metadata()?.len();
                let offset = if len >= r.offset { r.offset } else { 0 };
                if offset < r.offset {
                    f.stats.truncations += 1;
                }
                file.seek(SeekFrom::Start(offset))?;
                f.pos = Position { offset, line: if offset == r.offset { r.line } else { 0 }, ..r };
                f.file = Some(file);
                return Ok(f);
            }
        }
        f.reopen_path()?;
        Ok(f)
    }

    pub fn position(&self) -> Position {
        self.pos
    }

    fn reopen_path(&mut self) -> io::Result<()> {
        self.partial.clear();
        self.skipping = None;
        match File::open(&self.path) {
            Ok(file) => {
                let (dev, ino) = identity(&file.metadata()?);
                self.pos = Position { dev, ino, offset: 0, line: 0 };
                self.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.file = None,
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Reads every complete line available now, handing each parsed event or problem to `sink`; then checks for
    /// rotation and truncation. Returns how many lines were consumed.
    pub fn poll(&mut self, sink: &mut dyn FnMut(Result<(u64, MetricsEvent), Problem>)) -> io::Result<u64> {
        let before = self.consumed;
        if self.file.is_none() {
            self.reopen_path()?;
        }
        self.read_available(sink)?;
        if self.file.is_none() {
            return Ok(self.consumed - before);
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if identity(&m) != (self.pos.dev, self.pos.ino) => {
                // Rotated: the old file is complete, its last line too even without a newline.
                self.read_available(sink)?;
                if !self.partial.is_empty() {
                    let line = std::mem::take(&mut self.partial);
                    self.emit(&line, line.len() as u64, sink);
                }
                self.stats.rotations += 1;
                self.reopen_path()?;
                self.read_available(sink)?;
            }
            Ok(m) if m.len() < self.pos.offset + self.partial.len() as u64 => {
                // Truncated in place (copytruncate): start again from the top.
                self.stats.truncations += 1;
                self.reopen_path()?;
                self.read_available(sink)?;
            }
            _ => {}
        }
        Ok(self.consumed - before)
    }

    fn read_available(&mut self, sink: &mut dyn FnMut(Result<(u64, MetricsEvent), Problem>)) -> io::Result<()> {
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let Some(file) = self.file.as_mut() else { return Ok(()) };
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            let mut rest = &chunk[..n];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                let (head, tail) = rest.split_at(i);
                rest = &tail[1..];
                if let Some(skipped) = self.skipping.take() {
                    let len = skipped + head.len() as u64;
                    self.pos.line += 1;
                    self.consumed += 1;
                    self.pos.offset += len + 1;
                    let message = format!("line is {len} bytes, over the limit of {} bytes; skipped", self.max_line);
                    sink(Err(Problem { line: self.pos.line, code: "line_too_long", message }));
                    continue;
                }
                let line = if self.partial.is_empty() {
                    head.to_vec()
                } else {
                    let mut l = std::mem::take(&mut self.partial);
                    l.extend_from_slice(head);
                    l
                };
                self.emit(&line, line.len() as u64 + 1, sink);
            }
            if let Some(skipped) = self.skipping.as_mut() {
                *skipped += rest.len() as u64;
            } else {
                self.partial.extend_from_slice(rest);
                if self.partial.len() > self.max_line {
                    self.skipping = Some(self.partial.len() as u64);
                    self.partial = Vec::new();
                }
            }
        }
    }

    fn emit(&mut self, raw: &[u8], consumed: u64, sink: &mut dyn FnMut(Result<(u64, MetricsEvent), Problem>)) {
        self.pos.line += 1;
        self.consumed += 1;
        self.pos.offset += consumed;
        let line = self.pos.line;
        match std::str::from_utf8(raw) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => sink(parse_line(line, text.trim_end_matches('\r'))),
            Err(e) => sink(Err(Problem {
                line,
                code: "invalid_utf8",
                message: format!("not UTF-8 at byte {}", e.valid_up_to()),
            })),
        }
    }
}
