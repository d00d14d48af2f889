//! JSON lines: one `MetricsEvent` per line, from any reader, gzip detected by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::Problem;
use crate::events::{MetricsEvent, ParseErrorKind};

/// Lines longer than this are skipped (and reported) without being held in memory.
pub const DEFAULT_MAX_LINE: usize = 4 << 20;

/// Opens a file for reading, decompressing it when it starts with the gzip magic bytes (whatever its name).
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::with_capacity(256 << 10, File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(256 << 10, flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Standard input, gzip-aware like [`open`].
pub fn stdin() -> io::Result<Box<dyn BufRead + Send>> {
    let mut input = BufReader::with_capacity(256 << 10, io::stdin());
    let gz = input.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz { Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(input))) } else { Box::new(input) })
}

/// Iterates over the events of a JSON-lines stream: `Ok((line_number, event))` or `Err(problem)`. Blank lines
/// are skipped. A read error ends the iteration after being reported once as a problem.
pub struct JsonLines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
    max_line: usize,
    bytes: u64,
    done: bool,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(reader: R) -> Self {
        Self::with_max_line(reader, DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(reader: R, max_line: usize) -> Self {
        JsonLines { reader, line: 0, buf: Vec::new(), max_line, bytes: 0, done: false }
    }

    /// Bytes consumed so far (of the decompressed stream).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads one line into `buf` (without its newline), at most `max_line` bytes kept. Returns the line's full
    /// length, or `None` at the end of input.
    fn read_line(&mut self) -> io::Result<Option<usize>> {
        self.buf.clear();
        let mut len = 0usize;
        let mut any = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(any.then_some(len));
            }
            any = true;
            let (take, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() < self.max_line {
                let room = self.max_line - self.buf.len();
                self.buf.extend_from_slice(&chunk[..take.min(room)]);
            }
            len += take;
            let consumed = take + usize::from(end);
            self.reader.consume(consumed);
            self.bytes += consumed as u64;
            if end {
                return Ok(Some(len));
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<(u64, MetricsEvent), Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let len = match self.read_line() {
                Ok(Some(len)) => len,
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Problem { line: self.line + 1, code: "read_error", message: e.to_string() }));
                }
            };
            self.line += 1;
            let line = self.line;
            if len > self.max_line {
                let message = format!("line is {len} bytes, over the limit of {} bytes; skipped", self.max_line);
                return Some(Err(Problem { line, code: "line_too_long", message }));
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim_end_matches('\r'),
                Err(e) => {
                    let message = format!("not UTF-8 at byte {}", e.valid_up_to());
                    return Some(Err(Problem { line, code: "invalid_utf8", message }));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse_line(line, text));
        }
    }
}

/// Parses one line into an event or a problem naming the line.
pub fn parse_line(line: u64, text: &str) -> Result<(u64, MetricsEvent), Problem> {
    MetricsEvent::from_json(text).map(|e| (line, e)).map_err(|e| Problem {
        line,
        code: match e.kind {
            ParseErrorKind::InvalidJson => "invalid_json",
            ParseErrorKind::UnknownVariant => "unknown_variant",
            ParseErrorKind::MissingField => "missing_field",
            ParseErrorKind::InvalidField => "invalid_field",
        },
        message: e.message,
    })
}

/// Reads everything from `r` (for tests and small inputs).
pub fn read_all(r: impl Read) -> Vec<Result<(u64, MetricsEvent), Problem>> {
    JsonLines::new(BufReader::new(r)).collect()
}
