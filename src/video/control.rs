//! The output pipeline's control thread: it alone builds, starts, stops and watches the output
//! pipeline (RTP in → jitter buffer → decoder → fan-out to the sinks), so those blocking
//! GStreamer calls (a build, a state change that joins streaming threads) never run on the
//! async workers that carry RTP intake, the engine and WebRTC. It is reached through a typed
//! command channel; the pipeline's bus is watched here too (errors and warnings forwarded into
//! the same channel by a sync handler).
//!
//! The RTP intake task (`video::run`) asks for a pipeline with [`OutputControl::build`] and
//! awaits the reply (it has nothing to push until then; packets wait in its bounded channel), and
//! hears of a failure as an [`OutputEvent`]. The engine never talks to this thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel as cb;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot, watch};

use super::elements::VideoError;
use super::output::{self, Counters, FrameTaps, StreamKey};
use super::supervisor::{SinkPort, forward_bus};

/// What the control thread is asked to do.
enum ControlCmd {
    /// Stop the running pipeline (if any), build one for `key` and start it.
    Build {
        key: StreamKey,
        reply: oneshot::Sender<Result<OutputInput, VideoError>>,
    },
    /// Stop the running pipeline.
    Stop,
    /// An error, warning or end-of-stream from the bus of the pipeline built as `run`.
    Bus { run: u64, msg: gst::Message },
    /// Stop the pipeline and end the thread.
    Shutdown,
}

/// What the RTP intake holds of a running output pipeline: where packets go in and where
/// losses are read (both thread-safe element handles; the pipeline itself stays with the control
/// thread).
pub(crate) struct OutputInput {
    /// Stream it was built for.
    pub(crate) key: StreamKey,
    /// Which build it is (events name it).
    pub(crate) run: u64,
    /// Where RTP goes in.
    pub(crate) src: gst_app::AppSrc,
    /// For lost/late packet statistics.
    pub(crate) jitterbuffer: gst::Element,
}

/// What the control thread tells the intake.
#[derive(Debug)]
pub(crate) enum OutputEvent {
    /// The pipeline built as `run` failed (it is to be rebuilt); `text` explains.
    Failed { run: u64, text: String },
}

/// What every build of the output pipeline is made of.
pub(crate) struct OutputParts {
    pub(crate) jitter_ms: u32,
    pub(crate) sinks: Vec<SinkPort>,
    pub(crate) taps: FrameTaps,
    pub(crate) counters: Arc<Counters>,
    pub(crate) keyframes: watch::Sender<u64>,
}

/// The handle to the control thread.
pub(crate) struct OutputControl {
    tx: cb::Sender<ControlCmd>,
    done: oneshot::Receiver<()>,
}

impl OutputControl {
    /// Starts the control thread; failures of running pipelines arrive on `events`.
    pub(crate) fn spawn(
        parts: OutputParts,
        events: mpsc::UnboundedSender<OutputEvent>,
    ) -> Result<OutputControl, VideoError> {
        let (tx, rx) = cb::unbounded();
        let (done_tx, done) = oneshot::channel();
        let me = tx.clone();
        std::thread::Builder::new()
            .name("video-control".into())
            .spawn(move || {
                control(parts, rx, me, events);
                let _ = done_tx.send(());
            })
            .map_err(|e| VideoError::Pipeline(format!("video control thread: {e}")))?;
        Ok(OutputControl { tx, done })
    }

    /// Builds and starts a pipeline for `key` (stopping the running one first); resolves when
    /// it runs or failed to.
    pub(crate) async fn build(&self, key: StreamKey) -> Result<OutputInput, VideoError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(ControlCmd::Build { key, reply })
            .map_err(|_| VideoError::Pipeline("video control thread is gone".into()))?;
        answer
            .await
            .map_err(|_| VideoError::Pipeline("video control thread is gone".into()))?
    }

    /// Stops the running pipeline (done on the control thread; does not wait).
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(ControlCmd::Stop);
    }

    /// Stops the pipeline and ends the thread; resolves when it has.
    pub(crate) async fn shutdown(self) {
        let _ = self.tx.send(ControlCmd::Shutdown);
        let _ = self.done.await;
    }
}

/// The control thread's body.
fn control(
    parts: OutputParts,
    rx: cb::Receiver<ControlCmd>,
    me: cb::Sender<ControlCmd>,
    events: mpsc::UnboundedSender<OutputEvent>,
) {
    // The running pipeline, its build number, and whether it already failed.
    let mut current: Option<(u64, gst::Pipeline, bool)> = None;
    let mut runs = 0u64;
    while let Ok(cmd) = rx.recv() {
        match cmd {
            ControlCmd::Build { key, reply } => {
                if let Some((_, p, _)) = current.take() {
                    let _ = p.set_state(gst::State::Null);
                }
                runs += 1;
                let answer = start(key, runs, &parts, &me).map(|(pipeline, input)| {
                    current = Some((runs, pipeline, false));
                    input
                });
                let _ = reply.send(answer);
            }
            ControlCmd::Stop => {
                if let Some((_, p, _)) = current.take() {
                    let _ = p.set_state(gst::State::Null);
                }
            }
            ControlCmd::Bus { run, msg } => {
                if let Some((r, _, failed)) = &mut current
                    && *r == run
                    && !*failed
                    && let Some(text) = on_bus(&msg, &parts.counters)
                {
                    *failed = true;
                    let _ = events.send(OutputEvent::Failed { run, text });
                }
            }
            ControlCmd::Shutdown => break,
        }
    }
    if let Some((_, p, _)) = current.take() {
        let _ = p.set_state(gst::State::Null);
    }
}

/// Builds and starts the pipeline for `key` as build `run`.
fn start(
    key: StreamKey,
    run: u64,
    parts: &OutputParts,
    me: &cb::Sender<ControlCmd>,
) -> Result<(gst::Pipeline, OutputInput), VideoError> {
    let out = output::build(
        key,
        parts.jitter_ms,
        &parts.sinks,
        parts.taps.clone(),
        parts.counters.clone(),
        parts.keyframes.clone(),
    )?;
    let bus = out
        .pipeline
        .bus()
        .ok_or_else(|| VideoError::Pipeline("output pipeline has no bus".into()))?;
    let to = me.clone();
    forward_bus(&bus, move |msg| {
        let _ = to.send(ControlCmd::Bus { run, msg });
    });
    if out.pipeline.set_state(gst::State::Playing).is_err() {
        let _ = out.pipeline.set_state(gst::State::Null);
        return Err(VideoError::Pipeline(format!(
            "output pipeline for {key:?} could not start"
        )));
    }
    tracing::info!(?key, "video output pipeline running");
    Ok((
        out.pipeline,
        OutputInput {
            key,
            run,
            src: out.src,
            jitterbuffer: out.jitterbuffer,
        },
    ))
}

/// Counts decoder trouble; Some(explanation) when the pipeline failed.
fn on_bus(msg: &gst::Message, c: &Counters) -> Option<String> {
    let from_decoder = msg
        .src()
        .is_some_and(|s| s.name().as_str() == "dec" || s.name().as_str() == "depay");
    match msg.view() {
        gst::MessageView::Warning(w) if from_decoder => {
            c.decode_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("video decode: {}", w.error());
            None
        }
        gst::MessageView::Error(e) => {
            if from_decoder {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
            }
            let text = format!(
                "video output pipeline failed ({}), rebuilding: {}",
                msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                e.error()
            );
            tracing::warn!("{text}");
            Some(text)
        }
        _ => None,
    }
}
