//! Recording a set (`--record FILE`) and playing it back (`scope-deck replay`).
//!
//! The recording is the engine's own input log: every message the engine folds (actions with
//! their source, audio events, analysis frames at the control rate, ticks, transport events)
//! with the engine time it was folded at, plus every transport command it handed on and every
//! payload the transport put on the wire. One JSON object per line, gzip when the name ends in
//! `.gz`. Because the reducer is pure, folding the same messages at the same engine times
//! gives the same commands; `replay --compare` checks the data-channel messages they make
//! against the recorded wire payloads (`wire.rs`). Format in docs/recall.md.

pub(crate) mod format;
pub(crate) mod replay;
pub(crate) mod wire;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::core::msg::Msg;
use crate::transport::types::TransportCmd;

pub use format::{Header, Line};

/// Lines the writer may fall behind by before the engine drops (and counts) them: about ten
/// seconds of a show at the default control rate.
pub(crate) const QUEUE: usize = 4096;

/// How often the writer flushes (a crash loses at most this much of the recording).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

enum Item {
    In(Duration, Box<Msg>),
    Out(Duration, Option<usize>, TransportCmd),
}

/// The engine's end of a recording: `try_send` only; a full queue is counted, never waited on.
pub struct Recorder {
    tx: SyncSender<Item>,
    dropped: Arc<AtomicU64>,
    warned_at: Option<Instant>,
}

impl Recorder {
    /// A message about to be folded at engine time `t`.
    pub(crate) fn input(&mut self, msg: &Msg, t: Duration) {
        let item = Item::In(t, Box::new(msg.clone()));
        self.push(item);
    }

    /// A transport command the fold produced at `t`.
    pub(crate) fn output(&mut self, cmd: &TransportCmd, t: Duration) {
        self.push(Item::Out(t, None, cmd.clone()));
    }

    /// A command for output `n` of several (output 0's are written as the single server's).
    pub(crate) fn output_to(&mut self, n: usize, cmd: &TransportCmd, t: Duration) {
        self.push(Item::Out(t, (n > 0).then_some(n), cmd.clone()));
    }

    fn push(&mut self, item: Item) {
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Visible (log and dashboard log pane), at most once a second.
                if self
                    .warned_at
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    self.warned_at = Some(Instant::now());
                    tracing::warn!(
                        dropped = n,
                        "recording: the writer is behind; {n} line(s) dropped so far"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread's handle.
pub(crate) struct RecordWriter {
    done: Receiver<std::io::Result<u64>>,
    dropped: Arc<AtomicU64>,
    path: PathBuf,
}

impl RecordWriter {
    /// Waits (at most `within`) for the writer to finish the file after the engine dropped its
    /// [`Recorder`]; logs lines written and dropped.
    #[allow(clippy::print_stderr)]
    pub(crate) fn finish(self, within: Duration) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        match self.done.recv_timeout(within) {
            Ok(Ok(lines)) => {
                tracing::info!(path = %self.path.display(), lines, dropped, "recording written");
                if dropped > 0 {
                    eprintln!(
                        "scope-deck: recording {}: {dropped} line(s) dropped (writer behind)",
                        self.path.display()
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::error!("recording {} failed: {e}", self.path.display());
                eprintln!("scope-deck: recording {} failed: {e}", self.path.display());
            }
            Err(_) => tracing::error!(
                "recording {}: the writer did not finish within {within:?}",
                self.path.display()
            ),
        }
    }
}

/// Opens `path` for writing (gzip when it ends in `.gz`).
pub(crate) fn create_sink(path: &Path) -> std::io::Result<Box<dyn Write + Send>> {
    let f = std::fs::File::create(path)?;
    let buffered = std::io::BufWriter::with_capacity(64 * 1024, f);
    if is_gzip(path) {
        Ok(Box::new(flate2::write::GzEncoder::new(
            buffered,
            flate2::Compression::fast(),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Opens `path` for reading (gzip when it ends in `.gz`).
pub(crate) fn open_source(path: &Path) -> std::io::Result<Box<dyn std::io::BufRead>> {
    let f = std::fs::File::open(path)?;
    if is_gzip(path) {
        Ok(Box::new(std::io::BufReader::new(
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)),
        )))
    } else {
        Ok(Box::new(std::io::BufReader::new(f)))
    }
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Starts a recording into `path` with `header` as its first line.
pub(crate) fn start(path: &Path, header: &Header) -> std::io::Result<(Recorder, RecordWriter)> {
    if path.extension().is_some_and(|e| e == "zst") {
        return Err(std::io::Error::other(
            "zstd is not built in; name the recording .gz (gzip) or .jsonl",
        ));
    }
    let sink = create_sink(path)?;
    start_on(sink, header, QUEUE, path)
}

/// A recording into any sink, behind a queue of `capacity` lines.
fn start_on(
    sink: Box<dyn Write + Send>,
    header: &Header,
    capacity: usize,
    path: &Path,
) -> std::io::Result<(Recorder, RecordWriter)> {
    let mut head = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    head.push(b'\n');
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(capacity);
    let (done_tx, done) = std::sync::mpsc::channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    std::thread::Builder::new()
        .name("record-writer".into())
        .spawn(move || {
            let mut sink = sink;
            let r = sink.write_all(&head).and_then(|()| write_loop(rx, sink, d));
            let _ = done_tx.send(r);
        })?;
    Ok((
        Recorder {
            tx,
            dropped: dropped.clone(),
            warned_at: None,
        },
        RecordWriter {
            done,
            dropped,
            path: path.to_path_buf(),
        },
    ))
}

fn write_loop(
    rx: Receiver<Item>,
    mut sink: Box<dyn Write + Send>,
    dropped: Arc<AtomicU64>,
) -> std::io::Result<u64> {
    let mut lines = 0u64;
    let mut reported = 0u64;
    let mut flushed = Instant::now();
    let mut buf = Vec::with_capacity(4096);
    loop {
        let item = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(i) => Some(i),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let d = dropped.load(Ordering::Relaxed);
        if d > reported {
            // Where lines are missing, the file says so (replay reports it).
            reported = d;
            write_line(&mut sink, &mut buf, &Line::overflow(d))?;
        }
        if let Some(item) = item {
            for line in format::lines_of(item_parts(item)) {
                write_line(&mut sink, &mut buf, &line)?;
                lines += 1;
            }
        }
        if flushed.elapsed() >= FLUSH_EVERY {
            flushed = Instant::now();
            sink.flush()?;
        }
    }
    let d = dropped.load(Ordering::Relaxed);
    if d > reported {
        write_line(&mut sink, &mut buf, &Line::overflow(d))?;
    }
    sink.flush()?;
    drop(sink); // a gzip stream writes its trailer here
    Ok(lines)
}

fn item_parts(item: Item) -> format::Folded {
    match item {
        Item::In(t, m) => format::Folded::In(t, *m),
        Item::Out(t, n, c) => format::Folded::Out(t, n, c),
    }
}

fn write_line(sink: &mut dyn Write, buf: &mut Vec<u8>, line: &Line) -> std::io::Result<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, line).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    sink.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink that holds its first write until the test lets it go (a disk that stalls).
    struct Stalled {
        gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Some(g) = self.gate.lock().unwrap().take() {
                let _ = g.recv();
            }
            self.out.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_costs_counted_lines_never_a_wait() {
        let (open, gate) = std::sync::mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Stalled {
            gate: Mutex::new(Some(gate)),
            out: out.clone(),
        };
        let header = Header {
            format: format::FORMAT.into(),
            version: format::VERSION,
            deck_version: "test".into(),
            started_unix_ms: 0,
            backend: "dry-run".into(),
            control_hz: 100.0,
            config_files: vec![],
            themes: vec![],
            outputs: vec![],
        };
        let (mut rec, writer) = start_on(Box::new(sink), &header, 8, Path::new("t.jsonl")).unwrap();
        let t0 = Instant::now();
        for i in 0..100u64 {
            rec.input(&Msg::Tick, Duration::from_millis(i));
        }
        let took = t0.elapsed();
        assert!(
            rec.dropped.load(Ordering::Relaxed) >= 100 - 8 - 1,
            "the queue holds 8 (and the writer one): the rest is dropped and counted"
        );
        open.send(()).unwrap();
        drop(rec);
        writer.finish(Duration::from_secs(5));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("scope-deck-record"));
        assert!(
            lines.iter().any(|l| l.starts_with("{\"overflow\":")),
            "the gap is marked in the file: {text}"
        );
        let ticks = lines.iter().filter(|l| l.contains("\"tick\"")).count();
        assert!((1..=9).contains(&ticks), "{ticks} ticks written");
        eprintln!("100 pushes against a stalled writer took {took:?}");
    }
}
