//! Where plugin output goes: the `log` import and the guest's stdout/stderr all end up as
//! `tracing` events on target `shipper::plugin`, tagged with the plugin label, truncated to
//! a line cap and rate-limited per instance (dropped lines are counted and reported once the
//! bucket refills). The last stderr lines are kept so a panic message can be quoted in the
//! trap error.
//!
//! Not here: counters (counters.rs), and the decision whether the host log is JSON or text
//! (the app's telemetry).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::bindings::shipper::plugin::host::Level;

/// How many bytes of recent stderr are kept for trap messages.
const STDERR_TAIL_BYTES: usize = 512;

/// Bytes a guest may write per `check-write` permit; WASI streams use ~4–64 KiB.
const WRITE_PERMIT: usize = 4096;

/// The log sink shared by one instance's `log` import and its stdout/stderr streams.
#[derive(Clone)]
pub(crate) struct GuestLog {
    inner: Arc<Mutex<LogState>>,
}

struct LogState {
    /// Plugin name once `init` told it, a hash prefix before.
    label: String,
    lines_per_second: u32,
    max_line_bytes: usize,
    /// Token bucket: lines still allowed in the current window.
    tokens: u32,
    window_start: Instant,
    dropped: u64,
    /// Partial lines of stdout (index 0) and stderr (index 1).
    partial: [Vec<u8>; 2],
    /// Recent stderr text, for trap messages.
    stderr_tail: String,
}

/// Which guest stream a write came from.
#[derive(Clone, Copy)]
enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl GuestLog {
    pub(crate) fn new(label: String, lines_per_second: u32, max_line_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LogState {
                label,
                lines_per_second,
                max_line_bytes,
                tokens: lines_per_second,
                window_start: Instant::now(),
                dropped: 0,
                partial: [Vec::new(), Vec::new()],
                stderr_tail: String::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panic while holding this lock can only come from tracing itself; the state is
        // still consistent (counters and buffers), so keep going with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_label(&self, label: &str) {
        label.clone_into(&mut self.lock().label);
    }

    /// The `log` import.
    pub(crate) fn log(&self, level: Level, message: &str) {
        self.lock().emit(level, message, "log");
    }

    /// Takes the kept stderr text (cleared at each call so a trap quotes its own output).
    pub(crate) fn take_stderr_tail(&self) -> String {
        let mut state = self.lock();
        // A panic message may still sit in the partial buffer if it lacked a final newline.
        let partial = std::mem::take(&mut state.partial[Stream::Stderr as usize]);
        if !partial.is_empty() {
            let text = String::from_utf8_lossy(&partial).into_owned();
            state.keep_stderr(&text);
        }
        std::mem::take(&mut state.stderr_tail)
    }

    /// A WASI stdout/stderr implementation writing into this log.
    pub(crate) fn stdout(&self) -> GuestStream {
        GuestStream {
            log: self.clone(),
            stream: Stream::Stdout,
        }
    }

    /// See [`GuestLog::stdout`].
    pub(crate) fn stderr(&self) -> GuestStream {
        GuestStream {
            log: self.clone(),
            stream: Stream::Stderr,
        }
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.lock();
        let max = state.max_line_bytes;
        let mut rest = bytes;
        while !rest.is_empty() {
            let newline = rest.iter().position(|&b| b == b'\n');
            let (chunk, complete) = match newline {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = match newline {
                Some(i) => &rest[i + 1..],
                None => &[],
            };
            let buf = &mut state.partial[stream as usize];
            // Keep at most one line's worth; the excess of an endless line is cut off.
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if complete || buf.len() >= max {
                let line = std::mem::take(buf);
                let text = String::from_utf8_lossy(&line).into_owned();
                match stream {
                    Stream::Stdout => state.emit(Level::Info, &text, "stdout"),
                    Stream::Stderr => {
                        state.keep_stderr(&text);
                        state.emit(Level::Warn, &text, "stderr");
                    }
                }
            }
        }
    }
}

impl LogState {
    fn keep_stderr(&mut self, line: &str) {
        if !self.stderr_tail.is_empty() {
            self.stderr_tail.push_str(" | ");
        }
        self.stderr_tail.push_str(line.trim_end());
        if self.stderr_tail.len() > STDERR_TAIL_BYTES {
            let mut cut = self.stderr_tail.len() - STDERR_TAIL_BYTES;
            while !self.stderr_tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.stderr_tail.drain(..cut);
        }
    }

    fn emit(&mut self, level: Level, message: &str, source: &'static str) {
        let now = Instant::now();
        if now.duration_since(self.window_start).as_secs() >= 1 {
            if self.dropped > 0 {
                tracing::warn!(
                    target: "shipper::plugin",
                    plugin = %self.label,
                    dropped = self.dropped,
                    "plugin log lines dropped by the rate limit ({} per second)",
                    self.lines_per_second
                );
                self.dropped = 0;
            }
            self.window_start = now;
            self.tokens = self.lines_per_second;
        }
        if self.tokens == 0 {
            self.dropped += 1;
            return;
        }
        self.tokens -= 1;
        let message = truncate(message, self.max_line_bytes);
        let plugin = &self.label;
        match level {
            Level::Error => {
                tracing::error!(target: "shipper::plugin", plugin = %plugin, source, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "shipper::plugin", plugin = %plugin, source, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "shipper::plugin", plugin = %plugin, source, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "shipper::plugin", plugin = %plugin, source, "{message}")
            }
            Level::Trace => {
                tracing::trace!(target: "shipper::plugin", plugin = %plugin, source, "{message}")
            }
        }
    }
}

/// `log-enabled`: whether the host log would write this level for plugins.
pub(crate) fn level_enabled(level: Level) -> bool {
    match level {
        Level::Error => tracing::enabled!(target: "shipper::plugin", tracing::Level::ERROR),
        Level::Warn => tracing::enabled!(target: "shipper::plugin", tracing::Level::WARN),
        Level::Info => tracing::enabled!(target: "shipper::plugin", tracing::Level::INFO),
        Level::Debug => tracing::enabled!(target: "shipper::plugin", tracing::Level::DEBUG),
        Level::Trace => tracing::enabled!(target: "shipper::plugin", tracing::Level::TRACE),
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [{} bytes truncated]", &s[..cut], s.len() - cut).into()
}

/// One guest output stream (stdout or stderr) feeding [`GuestLog`]. Writes never block and
/// never fail: the log absorbs them (bounded by line cap and rate limit).
pub(crate) struct GuestStream {
    log: GuestLog,
    stream: Stream,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestStream {
            log: self.log.clone(),
            stream: self.stream,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestStream {
            log: self.log.clone(),
            stream: self.stream,
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_lines_are_split_truncated_and_kept_for_traps() {
        let log = GuestLog::new("p".into(), 100, 16);
        log.write(Stream::Stderr, b"thread panicked at src/lib.rs:1:1:\nbo");
        log.write(Stream::Stderr, b"om\n");
        let tail = log.take_stderr_tail();
        // The first line is cut at 16 bytes, the second arrives in two writes.
        assert_eq!(tail, "thread panicked | boom");
        assert_eq!(log.take_stderr_tail(), "");
    }

    #[test]
    fn partial_stderr_is_included_in_the_tail() {
        let log = GuestLog::new("p".into(), 100, 1024);
        log.write(Stream::Stderr, b"no newline");
        assert_eq!(log.take_stderr_tail(), "no newline");
    }

    #[test]
    fn rate_limit_drops_and_counts() {
        let log = GuestLog::new("p".into(), 2, 1024);
        for _ in 0..5 {
            log.log(Level::Info, "x");
        }
        let state = log.lock();
        assert_eq!(state.tokens, 0);
        assert_eq!(state.dropped, 3);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h… [5 bytes truncated]");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
