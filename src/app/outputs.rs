//! Starting several outputs (`[[outputs]]`, docs/outputs.md): one transport actor per output,
//! each with its own event channel, video sinks and video input, and the small routers that
//! let a standby's received video feed a lost primary's sinks.
//!
//! Nothing here is awaited by the engine: events reach it through forwarders (one per output,
//! each owning its output's event receiver), video packets are routed with `try_send`, and the
//! routes are a `watch` the engine writes from the core's failover state.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::LoadedConfig;
use crate::config::outputs::ResolvedOutput;
use crate::core::msg::Msg;
use crate::core::outputs::OutputId;
use crate::core::stage::OutputControl;
use crate::transport::config::Backend;
use crate::transport::types::{RtpPacket, TransportEvent};
use crate::transport::{StartError, TransportHandle, VideoPorts};

/// Packets a video router holds for a slow sink pipeline before dropping (counted by the
/// pipeline's jitter buffer as loss, like the transport's own `try_send`).
const ROUTE_CAPACITY: usize = 512;

/// Every output's running edges.
pub(crate) struct Outputs {
    /// Output 0's transport: the engine's `EngineIo::transport`, its events are
    /// `Msg::Transport` as with a single server.
    pub(crate) first: TransportHandle,
    /// Output 0's events.
    pub(crate) first_events: mpsc::Receiver<TransportEvent>,
    /// Outputs 1.. (their events reach the engine as `Msg::OutputEvent`).
    pub(crate) rest: Vec<TransportHandle>,
    /// Video output pipelines by output (None: that output has no sinks).
    pub(crate) videos: Vec<Option<crate::video::VideoHandle>>,
    /// Video inputs.
    pub(crate) inputs: Vec<crate::video::input::InputHandle>,
    /// Which output's received video feeds each output's sinks (index = sink owner); the
    /// engine writes it from `OutputsSlice::video_source`.
    routes: watch::Sender<Vec<OutputId>>,
    /// Blackout/fade/record for every pipeline at once (the engine writes it).
    control: watch::Sender<OutputControl>,
    helpers: Vec<JoinHandle<()>>,
}

impl Outputs {
    /// Splits off what the wiring treats like a single server's (output 0's transport and
    /// events, the first video pipeline and input) from the rest.
    #[allow(clippy::type_complexity)]
    pub(crate) fn split(
        mut self,
        names: Vec<String>,
    ) -> (
        Rest,
        TransportHandle,
        mpsc::Receiver<TransportEvent>,
        Option<crate::video::VideoHandle>,
        Option<crate::video::input::InputHandle>,
    ) {
        let first_video = self.videos.iter().position(Option::is_some);
        let video = first_video.and_then(|i| self.videos[i].take());
        let input = (!self.inputs.is_empty()).then(|| self.inputs.remove(0));
        let rest = Rest {
            transports: self.rest,
            names,
            first_video,
            videos: self
                .videos
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, v?)))
                .collect(),
            inputs: self.inputs,
            routes: self.routes,
            control: self.control,
            helpers: self.helpers,
        };
        (rest, self.first, self.first_events, video, input)
    }
}

/// Outputs 1.. and the shared helpers, after [`Outputs::split`].
pub(crate) struct Rest {
    transports: Vec<TransportHandle>,
    names: Vec<String>,
    /// Whose pipeline [`Outputs::split`] handed out as the first video (None: no output has
    /// sinks).
    first_video: Option<OutputId>,
    /// The other pipelines, by output.
    videos: Vec<(OutputId, crate::video::VideoHandle)>,
    inputs: Vec<crate::video::input::InputHandle>,
    routes: watch::Sender<Vec<OutputId>>,
    /// Blackout/fade/record for every pipeline at once (the engine writes it).
    pub(crate) control: watch::Sender<OutputControl>,
    helpers: Vec<JoinHandle<()>>,
}

impl Rest {
    /// The engine's links to outputs 1.. and the routes it publishes.
    pub(crate) fn links(&self) -> crate::app::engine::OutputLinks {
        crate::app::engine::OutputLinks {
            rest: self.transports.iter().map(|h| h.link.clone()).collect(),
            video_routes: Some(self.routes.clone()),
        }
    }

    /// Every pipeline's change detector by output (latency measured per output), `first`
    /// being the video [`Outputs::split`] handed out.
    pub(crate) fn video_changes(
        &self,
        first: Option<&crate::video::VideoHandle>,
    ) -> Vec<(OutputId, watch::Receiver<Option<std::time::Instant>>)> {
        let first = self
            .first_video
            .zip(first)
            .map(|(i, v)| (i, v.changes.clone()));
        first
            .into_iter()
            .chain(self.videos.iter().map(|(i, v)| (*i, v.changes.clone())))
            .collect()
    }

    /// Asks every other output's transport to say goodbye (when the engine is not there to).
    pub(crate) fn goodbye(&self) {
        for t in &self.transports {
            let _ = t.link.send(crate::transport::TransportCmd::Shutdown);
        }
    }

    /// Waits for the other transports, inputs and pipelines to stop, each within `deadline`
    /// (a stuck one is named), then ends the helpers.
    pub(crate) async fn stop(
        self,
        stuck: &mut crate::app::shutdown::Stuck,
        deadline: std::time::Duration,
    ) {
        for (t, name) in self.transports.into_iter().zip(self.names.iter().skip(1)) {
            if tokio::time::timeout(deadline, t.task).await.is_err() {
                tracing::error!(output = %name, "transport did not stop within {deadline:?}; abandoned");
                stuck.add(["transport"]);
            }
        }
        for i in self.inputs {
            stuck.wait("video input", deadline, i.shutdown()).await;
        }
        for (_, v) in self.videos {
            stuck
                .wait(
                    "video output",
                    crate::app::shutdown::VIDEO_DEADLINE,
                    v.shutdown(),
                )
                .await;
        }
        for h in self.helpers {
            h.abort();
        }
    }
}

/// Starts every output's video edge and transport. Video failures are logged (that output
/// runs without video, as with a single server); a transport that cannot start stops the deck.
pub(crate) fn start(
    loaded: &LoadedConfig,
    outputs: &[ResolvedOutput],
    dry_run: bool,
    cancel: &CancellationToken,
    inputs: &mpsc::Sender<Msg>,
) -> Result<Outputs, StartError> {
    let n = outputs.len();
    let mut helpers = Vec::new();
    let mut videos = Vec::with_capacity(n);
    let mut sinks_in: Vec<Option<mpsc::Sender<RtpPacket>>> = Vec::with_capacity(n);
    let mut video_inputs = Vec::new();
    let mut ports = Vec::with_capacity(n);
    for (i, out) in outputs.iter().enumerate() {
        let mut p = VideoPorts::default();
        let mut handle = None;
        let mut tx_in = None;
        if !out.video.sinks.is_empty() {
            match crate::video::start(&out.video, cancel.clone()) {
                Ok((tx, h)) => {
                    tx_in = Some(tx);
                    handle = Some(h);
                }
                Err(e) => tracing::error!(output = %out.spec.name, "video output not started: {e}"),
            }
        }
        if out.video.input.source != crate::video::config::InputSource::None {
            let (tx, rx) = mpsc::channel(crate::video::input::SAMPLE_CAPACITY);
            let mut input_cfg = out.video.input.clone();
            input_cfg.codec = crate::app::input_codec(if dry_run {
                Backend::DryRun
            } else {
                out.server.backend
            });
            match crate::video::input::start_with_health(
                &input_cfg,
                tx,
                cancel.clone(),
                (i == 0).then(|| inputs.clone()),
            ) {
                Ok(h) => {
                    p.samples_in = Some(Arc::new(tokio::sync::Mutex::new(rx)));
                    p.input_keyframes = Some(h.keyframes.clone());
                    video_inputs.push(h);
                }
                Err(e) => tracing::error!(output = %out.spec.name, "video input not started: {e}"),
            }
        }
        sinks_in.push(tx_in);
        videos.push(handle);
        ports.push(p);
    }
    // Video routes: each transport's received RTP goes through a router to the sinks whose
    // source it is now (its own, and a lost primary's while it stands in).
    let (routes, routes_rx) = watch::channel((0..n).collect::<Vec<OutputId>>());
    let mut kf_out = Vec::with_capacity(n);
    for (j, p) in ports.iter_mut().enumerate() {
        let (tx, rx) = mpsc::channel::<RtpPacket>(ROUTE_CAPACITY);
        p.rtp_out = Some(tx);
        helpers.push(tokio::spawn(route_video(
            j,
            rx,
            sinks_in.clone(),
            routes_rx.clone(),
        )));
        let (kf_tx, kf_rx) = watch::channel(0u64);
        p.keyframe_requests = Some(kf_rx);
        kf_out.push(kf_tx);
    }
    // Key-frame requests of each pipeline go to the transport feeding it (and a route change
    // asks the new source for one: its decoder has no reference for that stream yet).
    let kf_out = Arc::new(kf_out);
    for (k, v) in videos.iter().enumerate() {
        if let Some(v) = v {
            helpers.push(tokio::spawn(route_keyframes(
                k,
                v.keyframe_requests.clone(),
                routes_rx.clone(),
                kf_out.clone(),
            )));
        }
    }
    // One blackout/fade/record for all pipelines.
    let (control, control_rx) = watch::channel(OutputControl::default());
    let targets: Vec<watch::Sender<OutputControl>> =
        videos.iter().flatten().map(|v| v.control.clone()).collect();
    helpers.push(tokio::spawn(fan_control(control_rx, targets)));

    let mut first = None;
    let mut rest = Vec::with_capacity(n.saturating_sub(1));
    for (i, (out, p)) in outputs.iter().zip(ports).enumerate() {
        let (tev_tx, tev_rx) = mpsc::channel(crate::transport::EVENT_CAPACITY);
        let handle = spawn_one(loaded, out, dry_run, tev_tx, p)?;
        tracing::info!(output = %out.spec.name, backend = %out.spec.backend, target = %out.spec.target, "output started");
        if i == 0 {
            first = Some((handle, tev_rx));
        } else {
            helpers.push(tokio::spawn(forward_events(i, tev_rx, inputs.clone())));
            rest.push(handle);
        }
    }
    let Some((first, first_events)) = first else {
        return Err(StartError::Unavailable("no outputs"));
    };
    Ok(Outputs {
        first,
        first_events,
        rest,
        videos,
        inputs: video_inputs,
        routes,
        control,
        helpers,
    })
}

/// One output's transport (the hosted backend has its own start path, as with one server).
fn spawn_one(
    loaded: &LoadedConfig,
    out: &ResolvedOutput,
    dry_run: bool,
    events: mpsc::Sender<TransportEvent>,
    video: VideoPorts,
) -> Result<TransportHandle, StartError> {
    if out.server.backend == Backend::Daydream && !dry_run {
        return crate::transport::daydream::spawn(
            &out.daydream,
            loaded.dir.as_deref(),
            events,
            video,
        );
    }
    crate::transport::spawn_with_video(&out.server, dry_run, events, video)
}

/// Output `i`'s events into the engine's input queue. Its own task, so a slow engine holds up
/// this output's transport only (its bounded event channel), never another output's.
async fn forward_events(
    i: OutputId,
    mut rx: mpsc::Receiver<TransportEvent>,
    to: mpsc::Sender<Msg>,
) {
    while let Some(event) = rx.recv().await {
        if to
            .send(Msg::OutputEvent { output: i, event })
            .await
            .is_err()
        {
            return;
        }
    }
    // The transport task ended without a goodbye: the engine treats it as stopped.
    let _ = to
        .send(Msg::OutputEvent {
            output: i,
            event: TransportEvent::Stopped,
        })
        .await;
}

/// Transport `j`'s received RTP to every pipeline whose source it is (`try_send`: a stuck
/// pipeline loses packets, it never holds up the transport).
async fn route_video(
    j: OutputId,
    mut rx: mpsc::Receiver<RtpPacket>,
    sinks: Vec<Option<mpsc::Sender<RtpPacket>>>,
    routes: watch::Receiver<Vec<OutputId>>,
) {
    while let Some(pkt) = rx.recv().await {
        let r = routes.borrow();
        for (k, src) in r.iter().enumerate() {
            if *src != j {
                continue;
            }
            if let Some(Some(tx)) = sinks.get(k) {
                let _ = tx.try_send(pkt.clone());
            }
        }
    }
}

/// Pipeline `k`'s key-frame requests to the transport that feeds it now; a route change asks
/// the new source at once.
async fn route_keyframes(
    k: OutputId,
    mut requests: watch::Receiver<u64>,
    mut routes: watch::Receiver<Vec<OutputId>>,
    out: Arc<Vec<watch::Sender<u64>>>,
) {
    let ask = |routes: &watch::Receiver<Vec<OutputId>>| {
        let src = routes.borrow().get(k).copied().unwrap_or(k);
        if let Some(tx) = out.get(src) {
            tx.send_modify(|n| *n += 1);
        }
    };
    loop {
        tokio::select! {
            r = requests.changed() => {
                if r.is_err() {
                    return;
                }
                ask(&routes);
            }
            r = routes.changed() => {
                if r.is_err() {
                    return;
                }
                ask(&routes);
            }
        }
    }
}

/// The engine's one blackout/fade/record state to every pipeline.
async fn fan_control(
    mut rx: watch::Receiver<OutputControl>,
    to: Vec<watch::Sender<OutputControl>>,
) {
    while rx.changed().await.is_ok() {
        let c = *rx.borrow_and_update();
        for t in &to {
            t.send_replace(c);
        }
    }
}
