//! The `scope` backend: the one owner of the HTTP client, the peer connection and the data
//! channel for a Scope server.
//!
//! Life of a session (docs/transport.md has the diagram): health → (models) → load → warm-up
//! countdown → schema → offer/answer with `initialParameters` = full state + `pipeline_ids` →
//! streaming, with the coalescer feeding the data channel. Any loss (server restart seen on
//! `/health`, data channel closed, peer connection failed, `stream_stopped`) goes to
//! `reconnecting` with exponential backoff and jitter, and the next session starts from the
//! engine's full desired state, read after the engine merged (and re-clamped to) the schema
//! this session reported. Commands are served during every await, so a quit during a 5-minute
//! warm-up is instant and edits made while disconnected are kept.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

use crate::transport::backoff::Backoff;
use crate::transport::coalescer::Coalescer;
use crate::transport::config::{IceMode, ServerConfig};
use crate::transport::http::{HttpError, ScopeHttp};
use crate::transport::lanes::Inbox;
use crate::transport::machine::{ConnMachine, FpsMeter, FrameVerdict, FrameWatch};
use crate::transport::protocol::{self, IceServer, LoadStatus, ServerMessage};
use crate::transport::schema;
use crate::transport::types::{ConnState, LinkStats, TransportCmd, TransportEvent, WarmUp};
use crate::transport::webrtc_session::{self, LinkEvent, Session, VideoPorts};

/// How long to wait for ICE gathering before sending the offer anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the data channel may take to open after the answer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Consecutive failed `/health` polls before the link counts as lost.
const HEALTH_FAILURES: u32 = 3;
/// How long the goodbye DELETE may take.
const DELETE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long to wait for the engine to merge the schema before the offer (it folds at once
/// unless it is stuck; then the offer goes out with the state it has).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an await was cut short by a command.
enum Interrupt {
    Reconnect,
    Shutdown,
}

/// Why a session attempt or a session ended.
enum End {
    /// Try again after backoff.
    Retry(String),
    /// The server restarted (it forgot the session: no DELETE); try again after backoff.
    Restarted(String),
    /// Nobody answers `/health`: probe it at `health_probe_ms` and try again the moment it
    /// answers (no backoff: a returning server should not sit idle while the deck waits).
    Unreachable(String),
    /// Try again at once (the performer asked).
    Now(String),
    /// Retrying cannot help (unknown pipeline, a load that keeps failing): say so and wait for
    /// the performer's reconnect.
    Hopeless(String),
    /// Quit.
    Shutdown,
}

impl From<Interrupt> for End {
    fn from(i: Interrupt) -> Self {
        match i {
            Interrupt::Reconnect => End::Now("reconnect requested".into()),
            Interrupt::Shutdown => End::Shutdown,
        }
    }
}

struct Actor {
    cfg: ServerConfig,
    http: ScopeHttp,
    events: mpsc::Sender<TransportEvent>,
    commands: Inbox,
    video: VideoPorts,
    t0: Instant,
    machine: ConnMachine,
    coalescer: Coalescer,
    /// Schemas reported to the engine (the offer waits until it has merged them all).
    schemas_sent: u64,
    backoff: Backoff,
    server_start: Option<f64>,
    reconnects: u32,
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
}

/// Runs the Scope backend until `Shutdown` (answered with `Stopped`) or the command channel
/// closes.
pub async fn run(
    cfg: ServerConfig,
    commands: Inbox,
    events: mpsc::Sender<TransportEvent>,
    video: VideoPorts,
) {
    let http = match ScopeHttp::new(&cfg.url, ServerConfig::secs(cfg.request_timeout_s)) {
        Ok(h) => h,
        Err(e) => {
            let _ = events.send(TransportEvent::Error(e.to_string())).await;
            let _ = events
                .send(TransportEvent::State {
                    state: ConnState::Stopped,
                    reason: Some(e.to_string()),
                })
                .await;
            let _ = events.send(TransportEvent::Stopped).await;
            return;
        }
    };
    let mut actor = Actor {
        coalescer: Coalescer::new(cfg.send_rate_hz),
        backoff: Backoff::new(cfg.backoff_policy()),
        cfg,
        http,
        events,
        commands,
        video,
        t0: Instant::now(),
        machine: ConnMachine::default(),
        schemas_sent: 0,
        server_start: None,
        reconnects: 0,
        download_requested: false,
        ref_files: Vec::new(),
        upload_due: false,
        uploaded_to: None,
        load_failures: 0,
    };
    actor.main().await;
}

impl Actor {
    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    async fn emit(&self, ev: TransportEvent) {
        tracing::debug!("emit");
        // The engine is gone only while shutting down; nothing to report to then.
        let _ = self.events.send(ev).await;
    }

    async fn go(&mut self, to: ConnState, reason: impl Into<String>) {
        let now = self.now();
        match self.machine.go(to, reason, now) {
            Ok(Some(ev)) => self.emit(ev).await,
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }

    async fn error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        tracing::warn!("{msg}");
        self.emit(TransportEvent::Error(msg)).await;
    }

    /// Applies a command that does not end the current phase.
    fn absorb(&mut self, cmd: Option<TransportCmd>) -> Result<(), Interrupt> {
        match cmd {
            None | Some(TransportCmd::Shutdown) => Err(Interrupt::Shutdown),
            Some(TransportCmd::Reconnect) => Err(Interrupt::Reconnect),
            // Already connecting: every session starts from the full desired state anyway.
            Some(TransportCmd::Connect) => Ok(()),
            Some(TransportCmd::Update(u)) => {
                self.coalescer.push(u);
                Ok(())
            }
            Some(TransportCmd::UploadAssets { files }) => {
                // Done at the next safe point: before the offer, or in the streaming loop.
                self.ref_files = files;
                self.upload_due = true;
                Ok(())
            }
            Some(TransportCmd::DownloadModels) => {
                // Only meaningful while waiting for models; never tears down a live session.
                self.download_requested = true;
                if self.machine.state() == ConnState::Loading {
                    Err(Interrupt::Reconnect)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Awaits `fut` while serving commands.
    async fn guard<F: Future>(&mut self, fut: F) -> Result<F::Output, Interrupt> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                cmd = self.commands.recv() => self.absorb(cmd)?,
            }
        }
    }

    async fn sleep(&mut self, d: Duration) -> Result<(), Interrupt> {
        self.guard(tokio::time::sleep(d)).await
    }

    async fn main(&mut self) {
        // Wait for the engine's Connect (commands before it only shape the state).
        loop {
            match self.commands.recv().await {
                Some(TransportCmd::Connect) => break,
                other => {
                    if let Err(Interrupt::Shutdown) = self.absorb(other) {
                        return self.stopped("quit before connecting").await;
                    }
                }
            }
        }
        self.coalescer.clear_continuous();
        loop {
            let end = match self.attempt().await {
                Ok(session) => self.stream(session).await,
                Err(End::Retry(why)) => {
                    // Set-up failures are errors worth showing (endpoint and status named).
                    self.error(why.clone()).await;
                    End::Retry(why)
                }
                Err(e) => e,
            };
            match end {
                End::Shutdown => return self.stopped("quit").await,
                End::Hopeless(why) => {
                    let msg =
                        format!("{why}; not retrying (fix it, then press reconnect to try again)");
                    self.error(msg.clone()).await;
                    self.go(ConnState::Loading, msg).await;
                    match self.guard(std::future::pending::<()>()).await {
                        Err(Interrupt::Shutdown) => return self.stopped("quit").await,
                        _ => {
                            self.load_failures = 0;
                            self.reconnects += 1;
                            self.go(ConnState::Reconnecting, "reconnect requested")
                                .await;
                        }
                    }
                }
                End::Unreachable(why) => {
                    self.reconnects += 1;
                    self.error(format!("server unreachable: {why}")).await;
                    if let Err(Interrupt::Shutdown) = self.wait_for_server(&why).await {
                        return self.stopped("quit").await;
                    }
                }
                End::Now(why) => {
                    self.reconnects += 1;
                    self.backoff.reset();
                    // The performer asked: a load that failed before gets its full tries again.
                    self.load_failures = 0;
                    self.go(ConnState::Reconnecting, why).await;
                }
                End::Retry(why) | End::Restarted(why) => {
                    self.reconnects += 1;
                    let delay = self.backoff.next_delay();
                    self.go(
                        ConnState::Reconnecting,
                        format!("{why}; retrying in {:.1} s", delay.as_secs_f64()),
                    )
                    .await;
                    if let Err(Interrupt::Shutdown) = self.sleep(delay).await {
                        return self.stopped("quit").await;
                    }
                }
            }
        }
    }

    /// Probes `/health` every `health_probe_ms` until the server answers (or the performer
    /// asks to reconnect); the state says what it waits for.
    async fn wait_for_server(&mut self, why: &str) -> Result<(), Interrupt> {
        let every = Duration::from_millis(self.cfg.health_probe_ms.max(1));
        // A probe of a host that drops packets must not hang for the full request timeout.
        let limit = ServerConfig::secs(self.cfg.request_timeout_s).min(Duration::from_secs(2));
        self.go(
            ConnState::Reconnecting,
            format!(
                "waiting for the server ({why}); checking /health every {:.1} s",
                every.as_secs_f64()
            ),
        )
        .await;
        let http = self.http.clone();
        loop {
            match self.sleep(every).await {
                Err(Interrupt::Reconnect) => return Ok(()),
                other => other?,
            }
            match self.guard(tokio::time::timeout(limit, http.health())).await {
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

    async fn stopped(&mut self, why: &str) {
        self.go(ConnState::Stopped, why).await;
        self.emit(TransportEvent::Stopped).await;
    }

    /// Everything up to an open data channel.
    async fn attempt(&mut self) -> Result<ConnectedSession, End> {
        let http = self.http.clone();
        // 1. Health: is anyone there, and did it restart?
        let health = self.guard(http.health()).await?.map_err(|e| {
            if server_down(&e) {
                End::Unreachable(e.to_string())
            } else {
                End::Retry(e.to_string())
            }
        })?;
        if health.status != "healthy" {
            self.error(format!("GET /health: server says `{}`", health.status))
                .await;
        }
        if let Some(prev) = self.server_start {
            if prev != health.server_start_time {
                tracing::info!(
                    "server restarted (start time {prev} → {})",
                    health.server_start_time
                );
            }
        }
        self.server_start = Some(health.server_start_time);

        // 2. Pipeline: load unless ours is already loaded.
        let status = self
            .guard(http.status())
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let ours = self.cfg.pipeline_ids.first().cloned().unwrap_or_default();
        let loaded = status.status == LoadStatus::Loaded
            && status.pipeline_id.as_deref() == Some(ours.as_str());
        if !loaded {
            self.check_pipelines().await?;
            self.ensure_models().await?;
            self.load_and_warm().await?;
        }

        // 3. Schema → specs (clamping happens in the reducer; reported after the uploads).
        let specs = match self.guard(http.schemas()).await? {
            Ok(reply) => match schema::specs_from_schemas(&reply, &self.cfg.pipeline_ids) {
                Ok(specs) => specs,
                Err(e) => {
                    self.error(format!("GET /api/v1/pipelines/schemas: {e}"))
                        .await;
                    Vec::new()
                }
            },
            Err(e) => {
                self.error(e.to_string()).await;
                Vec::new()
            }
        };

        // 3b. What the server can publish itself (NDI/Spout/Syphon via `output_sinks`).
        match self.guard(http.hardware_info()).await? {
            Ok(hw) => self.emit(TransportEvent::Hardware(hw)).await,
            Err(e) => {
                // Older servers lack the endpoint: availability stays unknown, nothing refused.
                tracing::info!("{e}; the server's own outputs are not checked");
                self.emit(TransportEvent::Hardware(Default::default()))
                    .await;
            }
        }

        // 3c. Reference images, before the offer so `initialParameters` carries their paths.
        if self.upload_wanted() {
            self.upload_refs(false).await?;
        }

        // 3d. The schema last (even an empty one): once the engine has merged it, it has also
        // folded everything reported before it, so its desired state is re-clamped to this
        // pipeline and carries the uploaded paths.
        self.schemas_sent += 1;
        self.emit(TransportEvent::Schema(specs)).await;

        // 4. ICE servers.
        let ice = self.ice_servers().await?;

        // 5. Offer / answer.
        self.go(ConnState::Connecting, "negotiating WebRTC").await;
        self.negotiate(ice).await
    }

    /// Reference images are configured and not yet on this server (or an upload was asked for).
    fn upload_wanted(&self) -> bool {
        !self.ref_files.is_empty() && (self.upload_due || self.uploaded_to != self.server_start)
    }

    /// Uploads every reference image to `/api/v1/assets` (each failure reported with the file,
    /// endpoint and status) and reports the server paths (the engine stores them as
    /// `vace_ref_images`); `live` also queues them for the open data channel.
    async fn upload_refs(&mut self, live: bool) -> Result<(), Interrupt> {
        self.upload_due = false;
        let http = self.http.clone();
        let mut uploaded = Vec::new();
        for f in self.ref_files.clone() {
            let up = crate::video::scope_api::upload_asset(http.client(), http.base_url(), &f);
            match self.guard(up).await? {
                Ok(path) => uploaded.push((f, path)),
                Err(e) => self.error(e).await,
            }
        }
        if uploaded.is_empty() {
            return Ok(());
        }
        self.uploaded_to = self.server_start;
        let paths: Vec<&str> = uploaded.iter().map(|(_, p)| p.as_str()).collect();
        let value = serde_json::json!(paths);
        if live {
            self.coalescer
                .push(crate::transport::types::ParamUpdate::one(
                    "vace_ref_images",
                    value,
                ));
        }
        self.emit(TransportEvent::AssetsUploaded { uploaded }).await;
        Ok(())
    }

    async fn ice_servers(&mut self) -> Result<Vec<IceServer>, End> {
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
        match self.guard(http.ice_servers()).await? {
            Ok(list) => Ok(list.ice_servers),
            Err(e) => {
                self.error(format!("{e}; continuing without ICE servers"))
                    .await;
                Ok(Vec::new())
            }
        }
    }

    /// Missing models are named as such, never reported as a vague load failure.
    async fn ensure_models(&mut self) -> Result<(), End> {
        let http = self.http.clone();
        for id in self.cfg.pipeline_ids.clone() {
            let st = match self.guard(http.models_status(&id)).await? {
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
                if !(self.cfg.auto_download_models || self.download_requested) {
                    let msg = format!(
                        "pipeline `{id}`: its models are not downloaded on the server (or set \
                         server.auto_download_models = true); fetch them with `download_models`"
                    );
                    self.error(msg.clone()).await;
                    self.go(ConnState::Loading, msg).await;
                    // Wait for the performer (Reconnect / DownloadModels) or quit.
                    self.guard(std::future::pending::<()>()).await?;
                }
                match self.guard(http.models_download(&id)).await? {
                    Ok(()) | Err(HttpError::Status { status: 409, .. }) => {}
                    Err(e) => return Err(End::Retry(e.to_string())),
                }
            }
            self.download_requested = false;
            let started = self.now();
            loop {
                let st = match self.guard(http.models_status(&id)).await? {
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
                self.go(
                    ConnState::Loading,
                    format!("downloading models for `{id}`{pct}"),
                )
                .await;
                self.emit(TransportEvent::WarmUp(WarmUp {
                    elapsed: self.now().saturating_sub(started),
                    expected: ServerConfig::secs(self.cfg.warmup_expected_s),
                    stage: Some(format!("downloading models{pct}")),
                }))
                .await;
                self.sleep(Duration::from_millis(self.cfg.status_poll_ms))
                    .await?;
            }
        }
        Ok(())
    }

    /// Refuses pipeline ids the server does not offer (with the nearest one it does) before a
    /// load is sent; a server whose list cannot be read is not second-guessed.
    async fn check_pipelines(&mut self) -> Result<(), End> {
        let http = self.http.clone();
        let known = match self.guard(http.schemas()).await? {
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
    async fn load_failed(&mut self, why: String) -> End {
        self.load_failures += 1;
        let http = self.http.clone();
        let hw = match tokio::time::timeout(Duration::from_secs(2), http.hardware_info()).await {
            Ok(Ok(hw)) => match hw.vram_gb {
                Some(v) if v <= 0.0 => "; the server reports no GPU memory (vram_gb 0): a \
                                       diffusion pipeline needs a CUDA GPU"
                    .to_string(),
                Some(v) => format!("; server GPU memory {v:.0} GB"),
                None => String::new(),
            },
            _ => String::new(),
        };
        let n = self.load_failures;
        let max = self.cfg.max_load_failures.max(1);
        if n >= max {
            End::Hopeless(format!("{why}{hw} ({n} failed loads in a row)"))
        } else {
            End::Retry(format!("{why}{hw} (failed load {n} of {max})"))
        }
    }

    async fn load_and_warm(&mut self) -> Result<(), End> {
        let http = self.http.clone();
        let ids = self.cfg.pipeline_ids.clone();
        self.go(ConnState::Loading, format!("loading {}", ids.join(", ")))
            .await;
        let params = serde_json::to_value(&self.cfg.load_params).unwrap_or_default();
        self.guard(http.load(&ids, &params))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let started = self.now();
        let expected = ServerConfig::secs(self.cfg.warmup_expected_s);
        let limit = ServerConfig::secs(self.cfg.load_timeout_s);
        loop {
            let st = self
                .guard(http.status())
                .await?
                .map_err(|e| End::Retry(e.to_string()))?;
            let elapsed = self.now().saturating_sub(started);
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
                    return Err(self
                        .load_failed(format!("pipeline {} failed to load: {why}", ids.join(", ")))
                        .await);
                }
                LoadStatus::NotLoaded if elapsed > Duration::from_secs(2) => {
                    return Err(self
                        .load_failed(format!(
                            "pipeline {} is not loading (status not_loaded)",
                            ids.join(", ")
                        ))
                        .await);
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
            self.go(
                ConnState::Warming,
                match &stage {
                    Some(s) => format!("warming up ({s}), ~{left:.0} s left"),
                    None => format!("warming up, ~{left:.0} s left"),
                },
            )
            .await;
            self.emit(TransportEvent::WarmUp(WarmUp {
                elapsed,
                expected,
                stage,
            }))
            .await;
            self.sleep(Duration::from_millis(self.cfg.status_poll_ms))
                .await?;
        }
    }

    async fn negotiate(&mut self, ice: Vec<IceServer>) -> Result<ConnectedSession, End> {
        let loopback = self.cfg.is_loopback();
        let trickle = self.cfg.trickle;
        let video = self.video.clone();
        let session = self
            .guard(webrtc_session::build(&ice, loopback, trickle, &video))
            .await?
            .map_err(|e| End::Retry(e.to_string()))?;
        let sdp = match self.guard(session.offer(trickle, GATHER_TIMEOUT)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                session.close().await;
                return Err(End::Retry(e.to_string()));
            }
            Err(i) => {
                session.close().await;
                return Err(i.into());
            }
        };
        // The engine's full desired state once it has merged this session's schema, always
        // with pipeline_ids (without them Scope sends nothing).
        let settled = self.commands.settled(self.schemas_sent, SETTLE_TIMEOUT);
        match self.guard(settled).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "the engine did not merge the schema within {SETTLE_TIMEOUT:?}; offering the \
                 state it last published"
            ),
            Err(i) => {
                session.close().await;
                return Err(i.into());
            }
        }
        let mut initial = self.commands.full_state();
        initial.insert(
            "pipeline_ids".into(),
            serde_json::json!(self.cfg.pipeline_ids),
        );
        self.coalescer.clear_continuous();
        let http = self.http.clone();
        let answer = match self.guard(http.offer(&sdp, &initial)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                session.close().await;
                return Err(End::Retry(e.to_string()));
            }
            Err(i) => {
                session.close().await;
                return Err(i.into());
            }
        };
        let mut connected = ConnectedSession {
            id: answer.session_id.clone(),
            codec: protocol_codec(&answer.sdp),
            session,
        };
        if let Err(e) = connected.session.answer(answer.sdp).await {
            let e = End::Retry(e.to_string());
            self.end_session(connected, true, false).await;
            return Err(e);
        }
        self.emit(TransportEvent::Sent {
            payload: serde_json::Value::Object(initial),
        })
        .await;
        // Wait for the data channel, forwarding trickled candidates meanwhile.
        let deadline = tokio::time::Instant::now() + OPEN_TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, connected.session.events.recv());
            match self.guard(ev).await {
                Err(i) => {
                    let wait = matches!(i, Interrupt::Shutdown);
                    self.end_session(connected, true, wait).await;
                    return Err(i.into());
                }
                Ok(Err(_)) => {
                    self.end_session(connected, true, false).await;
                    return Err(End::Retry(format!(
                        "data channel did not open within {} s (ICE/DTLS failed?)",
                        OPEN_TIMEOUT.as_secs()
                    )));
                }
                Ok(Ok(None)) => {
                    self.end_session(connected, true, false).await;
                    return Err(End::Retry("WebRTC session ended while connecting".into()));
                }
                Ok(Ok(Some(ev))) => match ev {
                    LinkEvent::ChannelOpen => return Ok(connected),
                    LinkEvent::Candidate(c) => self.trickle(&connected.id, c).await,
                    LinkEvent::Peer(RTCPeerConnectionState::Failed) => {
                        self.end_session(connected, true, false).await;
                        return Err(End::Retry("ICE failed while connecting".into()));
                    }
                    _ => {}
                },
            }
        }
    }

    async fn trickle(&self, id: &str, candidate: serde_json::Value) {
        let http = self.http.clone();
        if let Err(e) = http
            .trickle(id, serde_json::Value::Array(vec![candidate]))
            .await
        {
            tracing::warn!("{e}");
        }
    }

    /// Streaming: coalesced sends, server messages, health, stats, frame watch.
    async fn stream(&mut self, mut s: ConnectedSession) -> End {
        let now = self.now();
        self.backoff.reset();
        self.go(ConnState::Streaming, "data channel open").await;
        let no_frames = ServerConfig::secs(self.cfg.no_frames_timeout_s);
        let mut watch = FrameWatch::new(no_frames, now);
        let mut fps = FpsMeter::default();
        let mut seen_frames = 0u64;
        let mut degraded_by_frames = false;
        let mut health_failures = 0u32;
        let mut server_fps = None;
        let mut monitor = {
            let http = self.http.clone();
            let tx = s.session.events_tx.clone();
            let every = Duration::from_millis(self.cfg.health_poll_ms);
            tokio::spawn(async move {
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
            })
        };
        let mut stats_tick = tokio::time::interval(Duration::from_millis(250));
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats_n = 0u32;
        let mut reported_drops = 0u64;
        // Edits made while disconnected (one-shots) go out now.
        let end = 'session: loop {
            if self.upload_due && !self.ref_files.is_empty() {
                if let Err(i) = self.upload_refs(true).await {
                    break 'session i.into();
                }
            }
            tracing::debug!("loop: flush");
            if let Err(e) = self.flush(&s).await {
                break 'session e;
            }
            tracing::debug!("loop: select");
            let due = self
                .coalescer
                .next_due()
                .map(|d| tokio::time::Instant::from_std(self.t0 + d));
            let sleep_due = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = self.commands.recv() => {
                    if let Err(i) = self.absorb(cmd) {
                        break 'session i.into();
                    }
                }
                _ = sleep_due => {}
                ev = s.session.events.recv() => {
                    let Some(ev) = ev else {
                        break 'session End::Retry("WebRTC session ended".into());
                    };
                    tracing::trace!(?ev, "link event");
                    match ev {
                        LinkEvent::ChannelClosed => {
                            break 'session End::Retry("data channel closed".into());
                        }
                        LinkEvent::Peer(st) => match st {
                            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                                break 'session End::Retry(format!("peer connection {st}"));
                            }
                            RTCPeerConnectionState::Disconnected => {
                                self.go(ConnState::Degraded, "ICE disconnected; waiting for it to recover").await;
                            }
                            RTCPeerConnectionState::Connected
                                if self.machine.state() == ConnState::Degraded && !degraded_by_frames =>
                            {
                                self.go(ConnState::Streaming, "ICE recovered").await;
                            }
                            _ => {}
                        },
                        LinkEvent::Message(text) => match protocol::parse_server_message(&text) {
                            Ok(msg) => {
                                let stopped = match &msg {
                                    ServerMessage::StreamStopped { error_message } => Some(
                                        error_message.clone().unwrap_or_else(|| "no reason given".into()),
                                    ),
                                    _ => None,
                                };
                                self.emit(TransportEvent::ServerMessage(msg)).await;
                                if let Some(why) = stopped {
                                    break 'session End::Retry(format!("server stopped the stream: {why}"));
                                }
                            }
                            Err(e) => self.error(e.to_string()).await,
                        },
                        LinkEvent::Candidate(c) => self.trickle(&s.id, c).await,
                        LinkEvent::Track(codec) => {
                            tracing::info!(?codec, "video track started");
                        }
                        LinkEvent::Health(Ok(start)) => {
                            health_failures = 0;
                            if self.server_start.is_some_and(|p| p != start) {
                                self.server_start = Some(start);
                                break 'session End::Restarted("server restarted (new server_start_time)".into());
                            }
                        }
                        LinkEvent::Health(Err(e)) => {
                            health_failures += 1;
                            if health_failures >= HEALTH_FAILURES {
                                break 'session End::Unreachable(format!("server stopped answering: {e}"));
                            }
                        }
                        LinkEvent::ServerFps(f) => server_fps = f,
                        LinkEvent::ChannelOpen => {}
                    }
                }
                _ = stats_tick.tick() => {
                    tracing::debug!("stats tick");
                    let now = self.now();
                    let frames = s.session.counters.frames.load(Ordering::Relaxed);
                    for _ in seen_frames..frames {
                        watch.frame(now);
                        fps.frame(now);
                    }
                    seen_frames = frames;
                    match watch.verdict(now) {
                        FrameVerdict::Starved(gap) => {
                            degraded_by_frames = true;
                            let why = format!(
                                "connected but no video for {:.0} s: likely {}",
                                gap.as_secs_f64(),
                                watch.likely_cause(true)
                            );
                            self.go(ConnState::Degraded, why).await;
                        }
                        FrameVerdict::Flowing => {
                            if degraded_by_frames {
                                degraded_by_frames = false;
                                self.go(ConnState::Streaming, "video flowing again").await;
                            }
                        }
                    }
                    stats_n += 1;
                    tracing::debug!("stats: verdict done");
                    if stats_n % 4 == 0 {
                        let c = &s.session.counters;
                        let packets = c.packets.load(Ordering::Relaxed);
                        let lost = c.lost.load(Ordering::Relaxed);
                        let loss = (packets + lost > 0).then(|| lost as f32 / (packets + lost) as f32);
                        let stats = LinkStats {
                            rx_fps: fps.fps(now),
                            rtt_ms: s.session.rtt_ms().await,
                            loss,
                            server_fps,
                            reconnects: self.reconnects,
                            ..LinkStats::default()
                        };
                        let dropped = c.dropped.load(Ordering::Relaxed);
                        if dropped > reported_drops {
                            tracing::warn!(
                                dropped = dropped - reported_drops,
                                total = dropped,
                                "video edge fell behind; RTP packets dropped"
                            );
                            reported_drops = dropped;
                        }
                        self.emit(TransportEvent::Stats(stats)).await;
                    }
                }
            }
        };
        tracing::debug!("session loop ended");
        monitor.abort();
        let _ = (&mut monitor).await;
        tracing::debug!("monitor stopped");
        // A restarted server forgot the session; an unreachable one cannot take a DELETE.
        let forgotten = matches!(end, End::Restarted(_) | End::Unreachable(_));
        let wait = matches!(end, End::Shutdown);
        self.end_session(s, !forgotten, wait).await;
        end
    }

    /// Sends whatever the coalescer has due.
    async fn flush(&mut self, s: &ConnectedSession) -> Result<(), End> {
        let now = self.now();
        for msg in self.coalescer.poll(now) {
            match protocol::encode(&msg) {
                Ok(text) => {
                    if let Err(e) = s.session.send(text).await {
                        // Not sent: put it back so the next session replays it.
                        self.coalescer.push(crate::transport::types::ParamUpdate {
                            values: msg,
                            urgent: true,
                        });
                        return Err(End::Retry(format!("data channel send failed: {e}")));
                    }
                    self.emit(TransportEvent::Sent {
                        payload: serde_json::Value::Object(msg),
                    })
                    .await;
                }
                Err(e) => {
                    self.emit(TransportEvent::Refused {
                        key: e.largest.clone(),
                        reason: e.to_string(),
                    })
                    .await;
                }
            }
        }
        Ok(())
    }

    /// DELETE (unless the server is known to have forgotten the session), then close.
    async fn end_session(&mut self, s: ConnectedSession, delete: bool, wait: bool) {
        if delete {
            let http = self.http.clone();
            match tokio::time::timeout(DELETE_TIMEOUT, http.delete_session(&s.id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::info!("{e}"),
                Err(_) => tracing::info!("DELETE session {} timed out", s.id),
            }
        }
        let _ = s.codec;
        if wait {
            s.session.close().await;
        } else {
            // Reconnect at once; the old connection winds down on its own.
            tokio::spawn(s.session.close());
        }
    }
}

/// An established session: the server's id plus the WebRTC objects.
struct ConnectedSession {
    id: String,
    codec: Option<crate::transport::types::VideoCodec>,
    session: Session,
}

/// `/health` got no answer, or a proxy's 5xx in front of a dead server (RunPod answers 502).
fn server_down(e: &HttpError) -> bool {
    match e {
        HttpError::Network { .. } => true,
        HttpError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

fn protocol_codec(answer_sdp: &str) -> Option<crate::transport::types::VideoCodec> {
    crate::transport::sdp::negotiated_video(answer_sdp).map(|(c, _)| c)
}
