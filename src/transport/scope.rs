//! The `scope` session: the Scope-specific part of the transport skeleton
//! ([`skeleton`](crate::transport::skeleton)), owner of the HTTP client, the peer connection and
//! the data channel for a Scope server.
//!
//! Life of a session (docs/transport.md has the diagram): health → (models) → load → warm-up
//! countdown → schema → offer/answer with `initialParameters` = full state + `pipeline_ids` →
//! streaming, the skeleton's coalescer feeding the data channel. Any loss (server restart seen on
//! `/health`, data channel closed, peer connection failed, `stream_stopped`) ends the session
//! and the skeleton reconnects (backoff and jitter); the next session starts from the engine's
//! full desired state, read after the engine merged (and re-clamped to) the schema this session
//! reported. Every step is awaited through [`Skeleton::guard`], so a quit during a 5-minute
//! warm-up is instant and edits made while disconnected are kept.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

use crate::transport::coalescer::Message;
use crate::transport::config::{IceMode, ServerConfig};
use crate::transport::http::{HttpError, ScopeHttp};
use crate::transport::lanes::Inbox;
use crate::transport::machine::{FpsMeter, FrameVerdict, FrameWatch};
use crate::transport::protocol::{self, IceServer, LoadStatus, ServerMessage};
use crate::transport::schema;
use crate::transport::skeleton::{self, End, Interrupt, Session, Skeleton};
use crate::transport::types::{
    ConnState, LinkStats, ParamUpdate, TransportCmd, TransportEvent, WarmUp,
};
use crate::transport::webrtc_session::{self, LinkEvent, PeerSession, VideoPorts};

/// How long to wait for ICE gathering before sending the offer anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the data channel may take to open after the answer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Consecutive failed `/health` polls before the link counts as lost.
const HEALTH_FAILURES: u32 = 3;
/// How long the goodbye DELETE may take.
const DELETE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How often the frame watch and stats run while streaming.
const STATS_TICK: Duration = Duration::from_millis(250);

/// Runs the Scope backend until `Shutdown` (answered with `Stopped`) or the engine is gone.
pub(crate) async fn run(
    cfg: ServerConfig,
    commands: Inbox,
    events: mpsc::Sender<TransportEvent>,
    video: VideoPorts,
) {
    let sk = Skeleton::new(
        commands,
        events,
        cfg.send_rate_hz,
        crate::transport::backoff::Backoff::new(cfg.backoff_policy()),
    );
    match ScopeHttp::new(&cfg.url, ServerConfig::secs(cfg.request_timeout_s)) {
        Ok(http) => skeleton::run(sk, ScopeSession::new(cfg, http, video)).await,
        Err(e) => skeleton::refuse(sk, e.to_string()).await,
    }
}

/// What a live Scope session's sources report.
pub(crate) enum ScopeEvent {
    /// The WebRTC stack or the health monitor (`None`: the session's channel closed).
    Link(Option<LinkEvent>),
    /// Time for the frame watch and statistics.
    Tick,
}

/// The Scope-specific state that outlives one session.
pub(crate) struct ScopeSession {
    cfg: ServerConfig,
    http: ScopeHttp,
    video: VideoPorts,
    server_start: Option<f64>,
    download_requested: bool,
    /// Local reference images to upload (`UploadAssets`).
    ref_files: Vec<std::path::PathBuf>,
    /// An upload was asked for and has not run yet.
    upload_due: bool,
    /// `server_start_time` of the server the images were last uploaded to (a restarted server
    /// may have lost them: upload again).
    uploaded_to: Option<f64>,
    /// Failed loads in a row (reset by a successful load or the performer's reconnect).
    load_failures: u32,
    /// The session being negotiated or streaming.
    live: Option<Live>,
}

/// One WebRTC session with the server, and what is watched while it streams.
struct Live {
    /// The server's session id, once its answer named it.
    id: Option<String>,
    peer: PeerSession,
    monitor: Option<tokio::task::JoinHandle<()>>,
    tick: tokio::time::Interval,
    watch: FrameWatch,
    fps: FpsMeter,
    seen_frames: u64,
    degraded_by_frames: bool,
    health_failures: u32,
    server_fps: Option<f32>,
    ticks: u32,
    reported_drops: u64,
}

impl ScopeSession {
    fn new(cfg: ServerConfig, http: ScopeHttp, video: VideoPorts) -> Self {
        ScopeSession {
            cfg,
            http,
            video,
            server_start: None,
            download_requested: false,
            ref_files: Vec::new(),
            upload_due: false,
            uploaded_to: None,
            load_failures: 0,
            live: None,
        }
    }

    /// Takes the one-shot commands queued while a step was awaited.
    fn take_queued(&mut self, sk: &mut Skeleton) {
        while let Some(cmd) = sk.for_session.pop_front() {
            self.take_command(cmd);
        }
    }

    fn take_command(&mut self, cmd: TransportCmd) {
        match cmd {
            TransportCmd::UploadAssets { files } => {
                // Done at the next safe point: before the offer, or in the streaming loop.
                self.ref_files = files;
                self.upload_due = true;
            }
            TransportCmd::DownloadModels => self.download_requested = true,
            _ => {}
        }
    }
}

impl Session for ScopeSession {
    type Event = ScopeEvent;

    async fn connect(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        self.take_queued(sk);
        let http = self.http.clone();
        // 1. Health: is anyone there, and did it restart?
        let health = sk.guard(http.health()).await?.map_err(|e| {
            if server_down(&e) {
                End::Unreachable(e.to_string())
            } else {
                End::Retry(e.to_string())
            }
        })?;
        if health.status != "healthy" {
            sk.error(format!("GET /health: server says `{}`", health.status));
        }
        if let Some(prev) = self.server_start
            && prev != health.server_start_time
        {
            tracing::info!(
                "server restarted (start time {prev} → {})",
                health.server_start_time
            );
        }
        self.server_start = Some(health.server_start_time);

        // 2. Pipeline: load unless ours is already loaded.
        let status = sk
            .guard(http.status())
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let ours = self.cfg.pipeline_ids.first().cloned().unwrap_or_default();
        let loaded = status.status == LoadStatus::Loaded
            && status.pipeline_id.as_deref() == Some(ours.as_str());
        if !loaded {
            self.check_pipelines(sk).await?;
            self.ensure_models(sk).await?;
            self.load_and_warm(sk).await?;
        }

        // 3. Schema → specs (clamping happens in the reducer; reported after the uploads).
        let specs = match sk.guard(http.schemas()).await? {
            Ok(reply) => match schema::specs_from_schemas(&reply, &self.cfg.pipeline_ids) {
                Ok(specs) => specs,
                Err(e) => {
                    sk.error(format!("GET /api/v1/pipelines/schemas: {e}"));
                    Vec::new()
                }
            },
            Err(e) => {
                sk.error(e.to_string());
                Vec::new()
            }
        };

        // 3b. What the server can publish itself (NDI/Spout/Syphon via `output_sinks`).
        match sk.guard(http.hardware_info()).await? {
            Ok(hw) => sk.emit(TransportEvent::Hardware(hw)),
            Err(e) => {
                // Older servers lack the endpoint: availability stays unknown, nothing refused.
                tracing::info!("{e}; the server's own outputs are not checked");
                sk.emit(TransportEvent::Hardware(Default::default()));
            }
        }

        // 3c. Reference images, before the offer so `initialParameters` carries their paths.
        self.take_queued(sk);
        if self.upload_wanted() {
            self.upload_refs(sk, false).await?;
        }

        // 3d. The schema last (even an empty one): once the engine has merged it, it has also
        // folded everything reported before it, so its desired state is re-clamped to this
        // pipeline and carries the uploaded paths.
        sk.report_schema(specs);

        // 4. ICE servers.
        let ice = self.ice_servers(sk).await?;

        // 5. Offer / answer.
        sk.go(ConnState::Connecting, "negotiating WebRTC");
        self.negotiate(sk, ice).await?;
        self.start_streaming(sk);
        // Images asked for while connecting go out on the open channel.
        self.take_queued(sk);
        if self.upload_due && !self.ref_files.is_empty() {
            self.upload_refs(sk, true).await?;
        }
        Ok(())
    }

    fn ready(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.monitor.is_some())
    }

    async fn send(&mut self, msg: Message, sk: &mut Skeleton) -> Result<(), End> {
        let Some(live) = &self.live else {
            sk.coalescer.push(ParamUpdate {
                values: msg,
                urgent: true,
            });
            return Ok(());
        };
        let text = match protocol::encode(&msg) {
            Ok(text) => text,
            Err(e) => {
                sk.emit(TransportEvent::Refused {
                    key: e.largest.clone(),
                    reason: e.to_string(),
                });
                return Ok(());
            }
        };
        let sent = match sk.guard(live.peer.send(text)).await {
            Ok(r) => r,
            Err(i) => {
                // Not known to be sent: the next session replays it.
                sk.coalescer.push(ParamUpdate {
                    values: msg,
                    urgent: true,
                });
                return Err(i.into());
            }
        };
        if let Err(e) = sent {
            // Not sent: put it back so the next session replays it.
            sk.coalescer.push(ParamUpdate {
                values: msg,
                urgent: true,
            });
            return Err(End::Retry(format!("data channel send failed: {e}")));
        }
        sk.emit(TransportEvent::Sent {
            payload: serde_json::Value::Object(msg),
        });
        Ok(())
    }

    async fn next_event(&mut self) -> ScopeEvent {
        match &mut self.live {
            Some(l) => tokio::select! {
                ev = l.peer.events.recv() => ScopeEvent::Link(ev),
                _ = l.tick.tick() => ScopeEvent::Tick,
            },
            None => std::future::pending().await,
        }
    }

    async fn on_event(&mut self, ev: ScopeEvent, sk: &mut Skeleton) -> Result<(), End> {
        match ev {
            ScopeEvent::Link(None) => Err(End::Retry("WebRTC session ended".into())),
            ScopeEvent::Link(Some(ev)) => self.on_link(ev, sk).await,
            ScopeEvent::Tick => self.on_tick(sk).await,
        }
    }

    async fn on_command(&mut self, cmd: TransportCmd, sk: &mut Skeleton) -> Result<(), End> {
        self.take_command(cmd);
        if self.upload_due && !self.ref_files.is_empty() {
            self.upload_refs(sk, true).await?;
        }
        Ok(())
    }

    async fn end(&mut self, why: &End, _sk: &mut Skeleton) {
        let Some(live) = self.live.take() else {
            return;
        };
        if let Some(m) = &live.monitor {
            m.abort();
        }
        // A restarted server forgot the session; an unreachable one cannot take a DELETE.
        let delete = live.id.clone().filter(|_| why.server_knows_session());
        let http = self.http.clone();
        let goodbye = async move {
            if let Some(id) = delete {
                match tokio::time::timeout(DELETE_TIMEOUT, http.delete_session(&id)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::info!("{e}"),
                    Err(_) => tracing::info!("DELETE session {id} timed out"),
                }
            }
            live.peer.close().await;
        };
        if matches!(why, End::Shutdown) {
            goodbye.await;
        } else {
            // Reconnect at once; the old session winds down on its own (webrtc-rs can take
            // long to close a connection whose peer vanished).
            tokio::spawn(goodbye);
        }
    }

    /// Probes `/health` every `health_probe_ms` until the server answers (or the performer
    /// asks to reconnect); the state says what it waits for.
    async fn wait_for_server(&mut self, why: &str, sk: &mut Skeleton) -> Result<(), Interrupt> {
        let every = Duration::from_millis(self.cfg.health_probe_ms.max(1));
        // A probe of a host that drops packets must not hang for the full request timeout.
        let limit = ServerConfig::secs(self.cfg.request_timeout_s).min(Duration::from_secs(2));
        sk.go(
            ConnState::Reconnecting,
            format!(
                "waiting for the server ({why}); checking /health every {:.1} s",
                every.as_secs_f64()
            ),
        );
        let http = self.http.clone();
        loop {
            match sk.sleep(every).await {
                Err(Interrupt::Reconnect) => return Ok(()),
                other => other?,
            }
            match sk.guard(tokio::time::timeout(limit, http.health())).await {
                Err(Interrupt::Reconnect) => return Ok(()),
                Err(i) => return Err(i),
                Ok(Ok(Ok(_))) => {
                    tracing::info!("the server answers /health again; connecting");
                    return Ok(());
                }
                Ok(Ok(Err(e))) if !server_down(&e) => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    fn fresh_start(&mut self) {
        // The performer asked: a load that failed before gets its full tries again.
        self.load_failures = 0;
    }
}

impl ScopeSession {
    /// Reference images are configured and not yet on this server (or an upload was asked for).
    fn upload_wanted(&self) -> bool {
        !self.ref_files.is_empty() && (self.upload_due || self.uploaded_to != self.server_start)
    }

    /// Uploads every reference image to `/api/v1/assets` (each failure reported with the file,
    /// endpoint and status) and reports the server paths (the engine stores them as
    /// `vace_ref_images`); `live` also queues them for the open data channel.
    async fn upload_refs(&mut self, sk: &mut Skeleton, live: bool) -> Result<(), Interrupt> {
        self.upload_due = false;
        let http = self.http.clone();
        let mut uploaded = Vec::new();
        for f in self.ref_files.clone() {
            let up = crate::video::scope_api::upload_asset(http.client(), http.base_url(), &f);
            match sk.guard(up).await? {
                Ok(path) => uploaded.push((f, path)),
                Err(e) => sk.error(e),
            }
        }
        if uploaded.is_empty() {
            return Ok(());
        }
        self.uploaded_to = self.server_start;
        let paths: Vec<&str> = uploaded.iter().map(|(_, p)| p.as_str()).collect();
        let value = serde_json::json!(paths);
        if live {
            sk.coalescer
                .push(ParamUpdate::one("vace_ref_images", value));
        }
        sk.emit(TransportEvent::AssetsUploaded { uploaded });
        Ok(())
    }

    async fn ice_servers(&mut self, sk: &mut Skeleton) -> Result<Vec<IceServer>, End> {
        let from_server = match self.cfg.ice {
            IceMode::None => false,
            IceMode::Config => {
                return Ok(self
                    .cfg
                    .ice_servers
                    .iter()
                    .map(|s| IceServer {
                        urls: s.urls.clone(),
                        username: Some(s.username.clone()).filter(|u| !u.is_empty()),
                        credential: Some(s.credential.clone()).filter(|c| !c.is_empty()),
                    })
                    .collect());
            }
            IceMode::Server => true,
            IceMode::Auto => !self.cfg.is_loopback(),
        };
        if !from_server {
            return Ok(Vec::new());
        }
        let http = self.http.clone();
        match sk.guard(http.ice_servers()).await? {
            Ok(list) => Ok(list.ice_servers),
            Err(e) => {
                sk.error(format!("{e}; continuing without ICE servers"));
                Ok(Vec::new())
            }
        }
    }

    /// Missing models are named as such, never reported as a vague load failure.
    async fn ensure_models(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        let http = self.http.clone();
        for id in self.cfg.pipeline_ids.clone() {
            let st = match sk.guard(http.models_status(&id)).await? {
                Ok(s) => s,
                // Older servers lack the endpoint: let the load tell.
                Err(HttpError::Status { status: 404, .. }) => continue,
                Err(e) => return Err(End::Retry(e.to_string())),
            };
            if st.downloaded {
                continue;
            }
            let downloading = st
                .progress
                .as_ref()
                .and_then(|p| p.get("is_downloading"))
                .and_then(|d| d.as_bool())
                .unwrap_or(false);
            if !downloading {
                self.take_queued(sk);
                if !(self.cfg.auto_download_models || self.download_requested) {
                    let msg = format!(
                        "pipeline `{id}`: its models are not downloaded on the server (or set \
                         server.auto_download_models = true); fetch them with `download_models`"
                    );
                    sk.error(msg.clone());
                    sk.go(ConnState::Loading, msg);
                    // Wait for the performer (Reconnect / DownloadModels) or quit.
                    sk.guard(std::future::pending::<()>()).await?;
                }
                match sk.guard(http.models_download(&id)).await? {
                    Ok(()) | Err(HttpError::Status { status: 409, .. }) => {}
                    Err(e) => return Err(End::Retry(e.to_string())),
                }
            }
            self.download_requested = false;
            let started = sk.now();
            loop {
                let st = match sk.guard(http.models_status(&id)).await? {
                    Ok(s) => s,
                    Err(e) => return Err(End::Retry(e.to_string())),
                };
                if st.downloaded {
                    break;
                }
                if let Some(err) = st.error() {
                    return Err(End::Retry(format!(
                        "model download for `{id}` failed: {err}"
                    )));
                }
                let pct = st
                    .percent()
                    .map(|p| format!(" {p:.0}%"))
                    .unwrap_or_default();
                sk.go(
                    ConnState::Loading,
                    format!("downloading models for `{id}`{pct}"),
                );
                sk.emit(TransportEvent::WarmUp(WarmUp {
                    elapsed: sk.now().saturating_sub(started),
                    expected: ServerConfig::secs(self.cfg.warmup_expected_s),
                    stage: Some(format!("downloading models{pct}")),
                }));
                sk.sleep(Duration::from_millis(self.cfg.status_poll_ms))
                    .await?;
            }
        }
        Ok(())
    }

    /// Refuses pipeline ids the server does not offer (with the nearest one it does) before a
    /// load is sent; a server whose list cannot be read is not second-guessed.
    async fn check_pipelines(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        let http = self.http.clone();
        let known = match sk.guard(http.schemas()).await? {
            Ok(reply) => schema::known_pipelines(&reply),
            Err(e) => {
                tracing::info!("{e}; pipeline ids not checked before loading");
                None
            }
        };
        match known {
            Some(known) => schema::check_pipeline_ids(&self.cfg.pipeline_ids, &known)
                .map_err(|e| End::Hopeless(format!("{e} (server.pipeline_ids)"))),
            None => Ok(()),
        }
    }

    /// A failed load of a server that answers: what the server's hardware says is added, and
    /// after `max_load_failures` in a row retrying stops.
    async fn load_failed(&mut self, sk: &mut Skeleton, why: String) -> End {
        self.load_failures += 1;
        let http = self.http.clone();
        let hw = tokio::time::timeout(Duration::from_secs(2), http.hardware_info());
        let hw = match sk.guard(hw).await {
            Ok(Ok(Ok(hw))) => match hw.vram_gb {
                Some(v) if v <= 0.0 => "; the server reports no GPU memory (vram_gb 0): a \
                                       diffusion pipeline needs a CUDA GPU"
                    .to_string(),
                Some(v) => format!("; server GPU memory {v:.0} GB"),
                None => String::new(),
            },
            Ok(_) => String::new(),
            Err(i) => return i.into(),
        };
        let n = self.load_failures;
        let max = self.cfg.max_load_failures.max(1);
        if n >= max {
            End::Hopeless(format!("{why}{hw} ({n} failed loads in a row)"))
        } else {
            End::Retry(format!("{why}{hw} (failed load {n} of {max})"))
        }
    }

    async fn load_and_warm(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        let http = self.http.clone();
        let ids = self.cfg.pipeline_ids.clone();
        sk.go(ConnState::Loading, format!("loading {}", ids.join(", ")));
        let params = serde_json::to_value(&self.cfg.load_params).unwrap_or_default();
        sk.guard(http.load(&ids, &params))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let started = sk.now();
        let expected = ServerConfig::secs(self.cfg.warmup_expected_s);
        let limit = ServerConfig::secs(self.cfg.load_timeout_s);
        loop {
            let st = sk
                .guard(http.status())
                .await?
                .map_err(|e| End::Retry(e.to_string()))?;
            let elapsed = sk.now().saturating_sub(started);
            match st.status {
                LoadStatus::Loaded => {
                    self.load_failures = 0;
                    return Ok(());
                }
                LoadStatus::Error => {
                    let why = match st.error.as_deref().map(str::trim) {
                        Some(e) if !e.is_empty() => e.to_string(),
                        _ => "the server gave no reason (status `error`, empty error field; \
                              the cause is in the server's log)"
                            .into(),
                    };
                    let why = format!("pipeline {} failed to load: {why}", ids.join(", "));
                    return Err(self.load_failed(sk, why).await);
                }
                LoadStatus::NotLoaded if elapsed > Duration::from_secs(2) => {
                    let why = format!(
                        "pipeline {} is not loading (status not_loaded)",
                        ids.join(", ")
                    );
                    return Err(self.load_failed(sk, why).await);
                }
                _ => {}
            }
            if elapsed > limit {
                return Err(End::Retry(format!(
                    "pipeline load took longer than {:.0} s",
                    limit.as_secs_f64()
                )));
            }
            let stage = st.loading_stage.clone();
            let left = expected.saturating_sub(elapsed).as_secs_f64();
            sk.go(
                ConnState::Warming,
                match &stage {
                    Some(s) => format!("warming up ({s}), ~{left:.0} s left"),
                    None => format!("warming up, ~{left:.0} s left"),
                },
            );
            sk.emit(TransportEvent::WarmUp(WarmUp {
                elapsed,
                expected,
                stage,
            }));
            sk.sleep(Duration::from_millis(self.cfg.status_poll_ms))
                .await?;
        }
    }

    /// Offer/answer up to an open data channel. The peer session is held in `self.live` from
    /// the moment it exists, so whatever ends the attempt, [`Session::end`] closes it.
    async fn negotiate(&mut self, sk: &mut Skeleton, ice: Vec<IceServer>) -> Result<(), End> {
        let loopback = self.cfg.is_loopback();
        let trickle = self.cfg.trickle;
        let peer = sk
            .guard(webrtc_session::scope_peer(
                &ice,
                loopback,
                trickle,
                &self.video,
            ))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let live = self.live.insert(Live {
            id: None,
            peer,
            monitor: None,
            tick: tokio::time::interval(STATS_TICK),
            watch: FrameWatch::new(ServerConfig::secs(self.cfg.no_frames_timeout_s), sk.now()),
            fps: FpsMeter::default(),
            seen_frames: 0,
            degraded_by_frames: false,
            health_failures: 0,
            server_fps: None,
            ticks: 0,
            reported_drops: 0,
        });
        let sdp = sk
            .guard(live.peer.offer(trickle, GATHER_TIMEOUT))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        // The engine's full desired state once it has merged this session's schema, always
        // with pipeline_ids (without them Scope sends nothing).
        let mut initial = sk.settled_full_state().await?;
        initial.insert(
            "pipeline_ids".into(),
            serde_json::json!(self.cfg.pipeline_ids),
        );
        let http = self.http.clone();
        let answer = sk
            .guard(http.offer(&sdp, &initial))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        live.id = Some(answer.session_id.clone());
        sk.guard(live.peer.answer(answer.sdp))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        sk.emit(TransportEvent::Sent {
            payload: serde_json::Value::Object(initial),
        });
        // Wait for the data channel, forwarding trickled candidates meanwhile.
        let deadline = tokio::time::Instant::now() + OPEN_TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, live.peer.events.recv());
            match sk.guard(ev).await? {
                Err(_) => {
                    return Err(End::Retry(format!(
                        "data channel did not open within {} s (ICE/DTLS failed?)",
                        OPEN_TIMEOUT.as_secs()
                    )));
                }
                Ok(None) => return Err(End::Retry("WebRTC session ended while connecting".into())),
                Ok(Some(ev)) => match ev {
                    LinkEvent::ChannelOpen => return Ok(()),
                    LinkEvent::Candidate(c) => {
                        let id = answer.session_id.clone();
                        trickle_candidate(sk, &http, &id, c).await?;
                    }
                    LinkEvent::Peer(RTCPeerConnectionState::Failed) => {
                        return Err(End::Retry("ICE failed while connecting".into()));
                    }
                    _ => {}
                },
            }
        }
    }

    /// The data channel is open: streaming, with the health monitor running.
    fn start_streaming(&mut self, sk: &mut Skeleton) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let http = self.http.clone();
        let tx = live.peer.events_tx.clone();
        let every = Duration::from_millis(self.cfg.health_poll_ms);
        live.monitor = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            loop {
                tick.tick().await;
                let h = http
                    .health()
                    .await
                    .map(|h| h.server_start_time)
                    .map_err(|e| e.to_string());
                if tx.send(LinkEvent::Health(h)).await.is_err() {
                    return;
                }
                n += 1;
                if n % 2 == 0 {
                    let f = http.metrics().await.ok().and_then(|m| {
                        m.sessions
                            .values()
                            .find_map(|s| s.fps_out.or(s.pipeline_fps))
                            .map(|f| f as f32)
                    });
                    let _ = tx.send(LinkEvent::ServerFps(f)).await;
                }
            }
        }));
        live.tick
            .set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        live.watch = FrameWatch::new(ServerConfig::secs(self.cfg.no_frames_timeout_s), sk.now());
        sk.go(ConnState::Streaming, "data channel open");
    }

    async fn on_link(&mut self, ev: LinkEvent, sk: &mut Skeleton) -> Result<(), End> {
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        tracing::trace!(?ev, "link event");
        match ev {
            LinkEvent::ChannelClosed => return Err(End::Retry("data channel closed".into())),
            LinkEvent::Peer(st) => match st {
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    return Err(End::Retry(format!("peer connection {st}")));
                }
                RTCPeerConnectionState::Disconnected => {
                    sk.go(
                        ConnState::Degraded,
                        "ICE disconnected; waiting for it to recover",
                    );
                }
                RTCPeerConnectionState::Connected
                    if sk.state() == ConnState::Degraded && !live.degraded_by_frames =>
                {
                    sk.go(ConnState::Streaming, "ICE recovered");
                }
                _ => {}
            },
            LinkEvent::Message(text) => match protocol::parse_server_message(&text) {
                Ok(msg) => {
                    let stopped = match &msg {
                        ServerMessage::StreamStopped { error_message } => Some(
                            error_message
                                .clone()
                                .unwrap_or_else(|| "no reason given".into()),
                        ),
                        _ => None,
                    };
                    sk.emit(TransportEvent::ServerMessage(msg));
                    if let Some(why) = stopped {
                        return Err(End::Retry(format!("server stopped the stream: {why}")));
                    }
                }
                Err(e) => sk.error(e.to_string()),
            },
            LinkEvent::Candidate(c) => {
                if let Some(id) = live.id.clone() {
                    let http = self.http.clone();
                    trickle_candidate(sk, &http, &id, c).await?;
                }
            }
            LinkEvent::Track(codec) => tracing::info!(?codec, "video track started"),
            LinkEvent::Health(Ok(start)) => {
                live.health_failures = 0;
                if self.server_start.is_some_and(|p| p != start) {
                    self.server_start = Some(start);
                    return Err(End::Restarted(
                        "server restarted (new server_start_time)".into(),
                    ));
                }
            }
            LinkEvent::Health(Err(e)) => {
                live.health_failures += 1;
                if live.health_failures >= HEALTH_FAILURES {
                    return Err(End::Unreachable(format!("server stopped answering: {e}")));
                }
            }
            LinkEvent::ServerFps(f) => live.server_fps = f,
            LinkEvent::ChannelOpen => {}
        }
        Ok(())
    }

    /// Frame watch (degraded when no video arrives) and, every second, the link statistics.
    async fn on_tick(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        let now = sk.now();
        let frames = live.peer.counters.frames.load(Ordering::Relaxed);
        for _ in live.seen_frames..frames {
            live.watch.frame(now);
            live.fps.frame(now);
        }
        live.seen_frames = frames;
        match live.watch.verdict(now) {
            FrameVerdict::Starved(gap) => {
                live.degraded_by_frames = true;
                let why = format!(
                    "connected but no video for {:.0} s: likely {}",
                    gap.as_secs_f64(),
                    live.watch.likely_cause(true)
                );
                sk.go(ConnState::Degraded, why);
            }
            FrameVerdict::Flowing => {
                if live.degraded_by_frames {
                    live.degraded_by_frames = false;
                    sk.go(ConnState::Streaming, "video flowing again");
                }
            }
        }
        live.ticks += 1;
        if live.ticks % 4 == 0 {
            let c = &live.peer.counters;
            let packets = c.packets.load(Ordering::Relaxed);
            let lost = c.lost.load(Ordering::Relaxed);
            let loss = (packets + lost > 0).then(|| lost as f32 / (packets + lost) as f32);
            let dropped = c.dropped.load(Ordering::Relaxed);
            if dropped > live.reported_drops {
                tracing::warn!(
                    dropped = dropped - live.reported_drops,
                    total = dropped,
                    "video edge fell behind; RTP packets dropped"
                );
                live.reported_drops = dropped;
            }
            // Bounded (200 ms) inside, and commands are served meanwhile.
            let rtt_ms = sk.guard(live.peer.rtt_ms()).await?;
            let stats = LinkStats {
                rx_fps: live.fps.fps(now),
                rtt_ms,
                loss,
                server_fps: live.server_fps,
                reconnects: sk.reconnects,
                ..LinkStats::default()
            };
            sk.emit(TransportEvent::Stats(stats));
        }
        Ok(())
    }
}

/// Sends one trickled ICE candidate (`PATCH`), serving commands while it is on its way.
async fn trickle_candidate(
    sk: &mut Skeleton,
    http: &ScopeHttp,
    id: &str,
    candidate: serde_json::Value,
) -> Result<(), Interrupt> {
    let patch = http.trickle(id, serde_json::Value::Array(vec![candidate]));
    if let Err(e) = sk.guard(patch).await? {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// `/health` got no answer, or a proxy's 5xx in front of a dead server (RunPod answers 502).
fn server_down(e: &HttpError) -> bool {
    match e {
        HttpError::Network { .. } => true,
        HttpError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}
