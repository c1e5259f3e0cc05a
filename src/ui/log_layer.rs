//! A tracing layer that copies log records into a bounded channel for the dashboard's log pane.
//! It never blocks the thread that logs: when the pane is behind, records are dropped (and
//! counted); the file log keeps everything.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One line for the log pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// Module path of the emitter.
    pub target: String,
    /// Message and fields.
    pub text: String,
}

/// The layer; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct PaneLayer {
    tx: mpsc::Sender<LogLine>,
    dropped: Arc<AtomicU64>,
}

impl PaneLayer {
    /// A layer and the receiving end (capacity `cap` lines).
    pub(crate) fn new(cap: usize) -> (Self, mpsc::Receiver<LogLine>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(cap);
        let dropped = Arc::new(AtomicU64::new(0));
        (
            PaneLayer {
                tx,
                dropped: dropped.clone(),
            },
            rx,
            dropped,
        )
    }
}

struct Collect(String);

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for PaneLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // The pane is for the performer: our own info and up, other crates' errors only (the
        // file log keeps everything).
        let ours = meta.target().starts_with("scope_deck");
        if *meta.level() > Level::INFO || (!ours && *meta.level() > Level::ERROR) {
            return;
        }
        let mut c = Collect(String::new());
        event.record(&mut c);
        let line = LogLine {
            level: *meta.level(),
            target: meta.target().to_string(),
            text: c.0,
        };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn records_info_and_above_and_drops_when_full() {
        let (layer, mut rx, dropped) = PaneLayer::new(2);
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("too detailed");
            tracing::warn!(target: "webrtc_dtls", "dependency noise");
            tracing::error!(code = 500, "server said no");
            tracing::info!("hello");
            tracing::warn!("third does not fit");
        });
        let first = rx.try_recv().unwrap();
        assert_eq!(first.level, Level::ERROR);
        assert_eq!(first.text, "server said no code=500");
        assert_eq!(rx.try_recv().unwrap().text, "hello");
        assert!(rx.try_recv().is_err());
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
