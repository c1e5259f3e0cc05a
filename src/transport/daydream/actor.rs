//! The daydream session of the transport skeleton: the one owner of the hosted stream. The
//! skeleton brings the inbox, state machine, coalescer and event sink; HTTP requests and
//! WHIP/WHEP negotiations run as tasks that report back through the session's events, so the
//! loop never blocks on the network and always answers `Shutdown` in time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::transport::backoff::{Backoff, BackoffPolicy};
use crate::transport::daydream::Setup;
use crate::transport::daydream::allowlist;
use crate::transport::daydream::api::{Api, Created, Health, HttpFail, redact_url};
use crate::transport::daydream::params::{ParamPlan, Report, specs};
use crate::transport::daydream::policy::{
    Decision, Outcome, PatchHealth, PatchVerdict, Throttle, UNAVAILABLE, WARMUP_RETRY, Warmup,
    create_retry, may_have_created,
};
use crate::transport::daydream::rtc::{self, MediaError, MediaLink, RtcOptions, RxCounters};
use crate::transport::skeleton::{self, End, Session, Skeleton};
use crate::transport::types::{ConnState, LinkStats, TransportCmd, TransportEvent, WarmUp};

/// How long the goodbye (WHIP/WHEP close, DELETE) may take: the engine waits 3 s in all.
const GOODBYE: Duration = Duration::from_millis(2500);
/// How often the "waiting for the first output" line is refreshed.
const WAIT_NOTE_EVERY: Duration = Duration::from_secs(5);
/// Clock skew allowed when matching a listed stream's `created_at` to a failed create.
const ORPHAN_SKEW_SECS: f64 = 30.0;

/// Wall-clock seconds since the Unix epoch (to match the service's `created_at`).
fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) enum Inner {
    /// The create result, and the wall-clock windows of failed attempts that may have created a
    /// stream anyway (no answer or 5xx).
    Created(u64, Result<Created, HttpFail>, Vec<(f64, f64)>),
    Status(u64, Result<Health, HttpFail>),
    Patched(u64, Result<(), HttpFail>, Map<String, Value>),
    Whip(u64, Result<MediaLink, MediaError>),
    Whep(u64, Result<MediaLink, MediaError>),
    /// A connected WHIP/WHEP peer connection failed or closed.
    MediaLost(u64, &'static str, String),
}

struct Stream {
    id: String,
    warmup: Warmup,
    active: bool,
    whip: Option<MediaLink>,
    whep: Option<MediaLink>,
    status_attempt: u32,
    poll_in_flight: bool,
    next_poll: Option<Duration>,
    gave_up_warmup: bool,
    /// WHEP URL from the status endpoint (fallback when the WHIP answer lacks the header).
    whep_hint: Option<String>,
    /// WHIP is up but had no playback header: start WHEP when a hint arrives.
    whep_wanted: bool,
    whep_started: bool,
    /// When playback (WHEP) started being tried, until it connects or gives up.
    whep_waiting_since: Option<Duration>,
    /// The last "waiting for the first output" refresh.
    wait_noted: Duration,
    /// The pipeline state and connection quality last reported by the status endpoint.
    server_state: Option<String>,
    conn_quality: Option<String>,
    /// The last gateway error reported (message, time), so each is shown once.
    gateway_error: Option<(String, Option<i64>)>,
}

/// The hosted backend's part of the transport skeleton: the stream, its WHIP/WHEP links and the
/// parameter plan. HTTP requests and WHIP/WHEP negotiations run as tasks that report back
/// through [`Session::next_event`], so the skeleton's loop keeps reading the inbox while they run.
pub(crate) struct DaydreamSession {
    setup: Setup,
    api: Api,
    http: reqwest::Client,
    plan: ParamPlan,
    health: PatchHealth,
    throttle: Throttle,
    /// The skeleton's clock (`Skeleton::now` is measured from it; the WHIP/WHEP retries use it).
    clock: Instant,
    epoch: u64,
    creating: Option<Duration>,
    create_task: Option<tokio::task::JoinHandle<()>>,
    stream: Option<Stream>,
    patch_in_flight: bool,
    inner_tx: mpsc::Sender<Inner>,
    inner_rx: mpsc::Receiver<Inner>,
    counters: Arc<RxCounters>,
    last_rx: (Duration, u64),
    rx_fps: f32,
    stats_tick: tokio::time::Interval,
    /// Failed creates that may have left a stream running (wall-clock windows).
    suspects: Vec<(f64, f64)>,
}

/// What the session's own sources report.
pub(crate) enum DaydreamEvent {
    /// A request or negotiation finished, or a media link was lost.
    Inner(Box<Inner>),
    /// A status poll or a throttled PATCH is due.
    Wake,
    /// Once a second: received fps, the "waiting for the first output" line.
    StatsTick,
}

/// Runs until `Shutdown` (answered with `Stopped`) or until the command channel closes.
pub(crate) async fn run(
    setup: Setup,
    api: Api,
    http: reqwest::Client,
    commands: crate::transport::lanes::Inbox,
    events: mpsc::Sender<TransportEvent>,
) {
    // Coalescer rate: the PATCH throttle paces the wire, the coalescer only orders and merges.
    let rate = setup.cfg.patch_rate_hz.max(1.0) * 4.0;
    // A failed stream is never re-created by itself (each one is billed): the skeleton's backoff
    // only paces a performer's repeated reconnects.
    let sk = Skeleton::new(
        commands,
        events,
        rate,
        Backoff::new(BackoffPolicy::default()),
    );
    let (inner_tx, inner_rx) = mpsc::channel(64);
    let plan = ParamPlan::new(setup.preset.params_json(), setup.cfg.confirm_reloads);
    let session = DaydreamSession {
        health: PatchHealth::new(setup.cfg.max_patch_failures),
        throttle: Throttle::new(setup.cfg.patch_rate_hz),
        setup,
        api,
        http,
        plan,
        clock: sk.clock(),
        epoch: 0,
        creating: None,
        create_task: None,
        stream: None,
        patch_in_flight: false,
        inner_tx,
        inner_rx,
        counters: Arc::new(RxCounters::default()),
        last_rx: (Duration::ZERO, 0),
        rx_fps: 0.0,
        stats_tick: tokio::time::interval(Duration::from_secs(1)),
        suspects: Vec::new(),
    };
    skeleton::run(sk, session).await;
}

impl Session for DaydreamSession {
    type Event = DaydreamEvent;

    /// The static schema goes to the engine; once it has merged it, its full desired state
    /// (re-clamped) seeds the plan and the stream is created with it.
    async fn connect(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        sk.report_schema(specs(self.plan.controlnet_count()));
        let initial = sk.settled_full_state().await?;
        let reports = self.plan.apply_initial(&initial);
        self.report(sk, reports);
        self.start_stream(sk)
    }

    async fn send(&mut self, msg: Map<String, Value>, sk: &mut Skeleton) -> Result<(), End> {
        let reports = self.plan.push(&msg);
        self.report(sk, reports);
        self.try_patch(sk);
        Ok(())
    }

    async fn next_event(&mut self) -> DaydreamEvent {
        let wake = self.next_wake();
        tokio::select! {
            Some(inner) = self.inner_rx.recv() => DaydreamEvent::Inner(Box::new(inner)),
            _ = sleep_until(self.clock, wake) => DaydreamEvent::Wake,
            _ = self.stats_tick.tick() => DaydreamEvent::StatsTick,
        }
    }

    async fn on_event(&mut self, ev: DaydreamEvent, sk: &mut Skeleton) -> Result<(), End> {
        match ev {
            DaydreamEvent::Inner(inner) => self.on_inner(sk, *inner),
            DaydreamEvent::Wake => {
                self.on_timer(sk);
                Ok(())
            }
            DaydreamEvent::StatsTick => {
                self.on_stats_tick(sk);
                Ok(())
            }
        }
    }

    async fn on_command(&mut self, cmd: TransportCmd, sk: &mut Skeleton) -> Result<(), End> {
        match cmd {
            TransportCmd::DownloadModels => {
                sk.emit(TransportEvent::Refused {
                    key: "download_models".into(),
                    reason: "Daydream hosts its models; there is nothing to download".into(),
                });
            }
            TransportCmd::UploadAssets { .. } => {
                sk.emit(TransportEvent::Refused {
                    key: "vace_ref_images".into(),
                    reason: "reference images (VACE) are a Scope-only feature".into(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Quit: the stream (and any a failed create may have left) is deleted before `Stopped`,
    /// bounded by [`GOODBYE`]. A reconnect: the old stream winds down in the background while
    /// the new one is created.
    async fn end(&mut self, why: &End, _sk: &mut Skeleton) {
        if matches!(why, End::Shutdown) {
            self.goodbye().await;
        } else {
            let work = self.teardown();
            tokio::spawn(work);
        }
    }
}

/// Watches a connected link's peer state; a failure or close is reported to the actor.
fn watch_media(
    mut link: MediaLink,
    what: &'static str,
    tx: mpsc::Sender<Inner>,
    epoch: u64,
) -> MediaLink {
    let (_, empty) = mpsc::channel(1);
    let mut states = std::mem::replace(&mut link.states, empty);
    tokio::spawn(async move {
        while let Some(s) = states.recv().await {
            use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState as P;
            if matches!(s, P::Failed | P::Closed) {
                let _ = tx.send(Inner::MediaLost(epoch, what, s.to_string())).await;
                return;
            }
        }
    });
    link
}

async fn sleep_until(clock: Instant, at: Option<Duration>) {
    match at {
        Some(t) => tokio::time::sleep_until((clock + t).into()).await,
        None => std::future::pending().await,
    }
}

impl DaydreamSession {
    fn report(&self, sk: &mut Skeleton, reports: Vec<Report>) {
        for r in reports {
            sk.emit(TransportEvent::Refused {
                key: r.key,
                reason: r.reason,
            });
        }
    }

    fn warmup_from(&self, at: Duration) -> Warmup {
        Warmup {
            created_at: at,
            grace: self.setup.cfg.grace(),
            backoff: WARMUP_RETRY,
        }
    }

    fn next_wake(&self) -> Option<Duration> {
        let mut t: Option<Duration> = None;
        let mut consider = |x: Duration| t = Some(t.map_or(x, |y: Duration| y.min(x)));
        if let Some(s) = &self.stream {
            if let Some(p) = s.next_poll
                && !s.poll_in_flight
            {
                consider(p);
            }
            if s.active
                && self.plan.has_pending()
                && !self.patch_in_flight
                && !self.health.unavailable()
            {
                consider(self.throttle.next_at());
            }
        }
        t
    }

    fn start_stream(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        self.epoch += 1;
        let epoch = self.epoch;
        self.health.reset();
        self.patch_in_flight = false;
        let body = json!({"pipeline": "streamdiffusion", "params": self.plan.create_params()});
        let problems = self.plan.create_problems();
        if !problems.is_empty() {
            let list = problems
                .iter()
                .map(|(k, why)| format!("{k}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(End::Hopeless(format!(
                "stream not created: Daydream's API would refuse these values ({list})"
            )));
        }
        sk.go(ConnState::Loading, "creating the Daydream stream");
        sk.emit(TransportEvent::Sent {
            payload: body.clone(),
        });
        let now = sk.now();
        self.creating = Some(now);
        let api = self.api.clone();
        let tx = self.inner_tx.clone();
        if let Some(t) = self.create_task.take() {
            t.abort();
        }
        self.create_task = Some(tokio::spawn(async move {
            let mut attempt = 0;
            let mut suspects = Vec::new();
            let result = loop {
                let started = epoch_now();
                match api.create(&body).await {
                    Ok(c) => break Ok(c),
                    Err(f) => {
                        if may_have_created(f.status) {
                            suspects.push((started, epoch_now()));
                        }
                        match create_retry(f.status, attempt) {
                            Some(d) => {
                                tracing::debug!("create failed ({f}); one retry in {d:?}");
                                attempt += 1;
                                tokio::time::sleep(d).await;
                            }
                            None => break Err(f),
                        }
                    }
                }
            };
            let _ = tx.send(Inner::Created(epoch, result, suspects)).await;
        }));
        Ok(())
    }

    fn on_inner(&mut self, sk: &mut Skeleton, inner: Inner) -> Result<(), End> {
        match inner {
            Inner::Created(g, r, suspects) if g == self.epoch => {
                self.suspects.extend(suspects);
                return self.on_created(sk, r);
            }
            Inner::Status(g, r) if g == self.epoch => self.on_status(sk, r),
            Inner::Patched(g, r, changes) if g == self.epoch => self.on_patched(sk, r, changes),
            Inner::Whip(g, r) if g == self.epoch => self.on_whip(sk, r),
            Inner::Whep(g, r) if g == self.epoch => self.on_whep(sk, r),
            Inner::MediaLost(g, what, why) if g == self.epoch => {
                let msg = if what == "WHIP" {
                    "video ingest lost"
                } else {
                    "video playback lost"
                };
                sk.emit(TransportEvent::Error(format!(
                    "{what}: peer connection {why}"
                )));
                sk.degrade(format!("{msg}; reconnect to retry"));
            }
            // A result from a stream already torn down: close what it opened (in the
            // background: the loop keeps serving the engine).
            Inner::Whip(_, Ok(link)) | Inner::Whep(_, Ok(link)) => {
                let http = self.http.clone();
                tokio::spawn(async move { link.close(&http).await });
            }
            Inner::Created(_, r, suspects) => {
                self.suspects.extend(suspects);
                if let Ok(c) = r {
                    let api = self.api.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(GOODBYE, api.delete(&c.id)).await;
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_created(&mut self, sk: &mut Skeleton, r: Result<Created, HttpFail>) -> Result<(), End> {
        self.creating = None;
        let c = match r {
            Ok(c) => c,
            Err(f) => {
                let hint = match f.status {
                    Some(409) => {
                        " — a conflict, possibly your account's limit of running streams: stop \
                         streams you no longer use in the Daydream dashboard, then reconnect"
                    }
                    Some(401 | 403) => " — check the API key",
                    Some(400) => " — the service refused the preset's values",
                    _ => "",
                };
                // Each create may start a billed stream: never retried by itself.
                return Err(End::Hopeless(format!(
                    "cannot create the Daydream stream: {f}{hint}"
                )));
            }
        };
        let now = sk.now();
        let warmup = self.warmup_from(now);
        tracing::info!(stream = %c.id, "Daydream stream created");
        let cfg = &self.setup.cfg;
        let whip_url =
            allowlist::check_media_url(&c.whip_url, &cfg.allowed_hosts, cfg.allow_local_dev);
        self.stream = Some(Stream {
            id: c.id.clone(),
            warmup,
            active: false,
            whip: None,
            whep: None,
            status_attempt: 0,
            poll_in_flight: false,
            next_poll: Some(now),
            gave_up_warmup: false,
            whep_hint: None,
            whep_wanted: false,
            whep_started: false,
            whep_waiting_since: None,
            wait_noted: Duration::ZERO,
            server_state: None,
            conn_quality: None,
            gateway_error: None,
        });
        let whip_url = match whip_url {
            Ok(u) => u,
            Err(why) => {
                sk.emit(TransportEvent::Error(format!("WHIP URL refused: {why}")));
                sk.degrade("no video ingest: WHIP URL refused; reconnect to retry");
                return Ok(());
            }
        };
        sk.go(ConnState::Warming, "Daydream pipeline warming up");
        sk.emit(TransportEvent::WarmUp(self.warm_up_figures(now, None)));
        let http = self.http.clone();
        let opts = self.rtc_options(&whip_url);
        let samples = self.setup.video.samples_in.clone();
        let keyframes = self.setup.video.input_keyframes.clone();
        if samples.is_none() {
            sk.emit(TransportEvent::Error(
                "no video input for WHIP: Daydream transforms a camera, file or test pattern; set one in [video]".into(),
            ));
        }
        let tx = self.inner_tx.clone();
        let epoch = self.epoch;
        let clock = self.clock;
        tokio::spawn(async move {
            let r = rtc::whip(&http, &whip_url, &opts, samples, keyframes, &warmup, clock).await;
            let _ = tx.send(Inner::Whip(epoch, r)).await;
        });
        Ok(())
    }

    fn rtc_options(&self, url: &url::Url) -> RtcOptions {
        let loopback = self.setup.cfg.allow_local_dev
            && (matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || url.host_str() == Some("localhost"));
        RtcOptions {
            ice_servers: if loopback {
                Vec::new()
            } else {
                self.setup.cfg.ice_servers.clone()
            },
            loopback,
            gather_timeout: rtc::GATHER_TIMEOUT,
            connect_timeout: rtc::CONNECT_TIMEOUT,
            hosts: rtc::HostPolicy {
                allowed: self.setup.cfg.allowed_hosts.clone(),
                allow_local_dev: self.setup.cfg.allow_local_dev,
            },
        }
    }

    fn warm_up_figures(&self, now: Duration, stage: Option<String>) -> WarmUp {
        let since = self.stream.as_ref().map_or(now, |s| s.warmup.created_at);
        WarmUp {
            elapsed: now.saturating_sub(since),
            expected: Duration::from_secs_f64(self.setup.cfg.expected_warmup_secs),
            stage,
        }
    }

    fn on_timer(&mut self, sk: &mut Skeleton) {
        let now = sk.now();
        let poll_due = self
            .stream
            .as_ref()
            .is_some_and(|s| !s.poll_in_flight && s.next_poll.is_some_and(|t| t <= now));
        if poll_due {
            self.poll_status();
        }
        self.try_patch(sk);
    }

    fn poll_status(&mut self) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        s.poll_in_flight = true;
        s.next_poll = None;
        let api = self.api.clone();
        let id = s.id.clone();
        let tx = self.inner_tx.clone();
        let epoch = self.epoch;
        tokio::spawn(async move {
            let r = api.status(&id).await;
            let _ = tx.send(Inner::Status(epoch, r)).await;
        });
    }

    fn on_status(&mut self, sk: &mut Skeleton, r: Result<Health, HttpFail>) {
        let now = sk.now();
        let poll = Duration::from_secs_f64(self.setup.cfg.status_poll_secs);
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        s.poll_in_flight = false;
        match r {
            Ok(h) if h.active => {
                s.status_attempt = 0;
                s.next_poll = Some(now + poll);
                let first = !s.active;
                let recovered = s.gave_up_warmup;
                s.active = true;
                s.gave_up_warmup = false;
                if h.whep_url.is_some() {
                    s.whep_hint = h.whep_url.clone();
                }
                let pending_whep = s.whep_wanted.then(|| s.whep_hint.clone()).flatten();
                let whip_up = s.whip.is_some();
                self.emit_health(sk, &h);
                if recovered && whip_up {
                    self.streaming(sk);
                } else if first {
                    tracing::info!("Daydream stream active");
                    if whip_up {
                        self.streaming(sk);
                    } else {
                        sk.go(
                            ConnState::Connecting,
                            "stream active; WHIP ingest connecting",
                        );
                    }
                }
                if let Some(u) = pending_whep {
                    self.start_whep(sk, &u);
                }
                self.try_patch(sk);
            }
            other => {
                let (outcome, why) = match &other {
                    Ok(h) => (
                        Outcome::NotReady,
                        h.error
                            .clone()
                            .unwrap_or_else(|| "status: not active yet".into()),
                    ),
                    Err(f) => (f.outcome(), f.to_string()),
                };
                match s.warmup.after_failure(outcome, s.status_attempt, now) {
                    Decision::RetryAfter(d) => {
                        let d = match &other {
                            Err(f) => f.pace(d),
                            Ok(_) => d,
                        };
                        s.status_attempt += 1;
                        s.next_poll = Some(now + d);
                        // Short enough for the connection panel's stage line.
                        let short = match &other {
                            Err(HttpFail {
                                status: Some(code), ..
                            }) => format!("HTTP {code}"),
                            Err(_) => "no answer".to_string(),
                            Ok(_) => "not active yet".to_string(),
                        };
                        tracing::debug!("Daydream status not ready: {why}");
                        let w = self.warm_up_figures(now, Some(format!("not ready ({short})")));
                        sk.emit(TransportEvent::WarmUp(w));
                    }
                    Decision::GiveUp => {
                        s.next_poll = Some(now + poll);
                        if !s.gave_up_warmup {
                            s.gave_up_warmup = true;
                            let was_active = s.active;
                            let msg = if was_active {
                                format!("Daydream status check failed: {why}")
                            } else {
                                format!(
                                    "Daydream stream did not become active within the warm-up window: {why}"
                                )
                            };
                            sk.emit(TransportEvent::Error(msg));
                            sk.degrade("Daydream stream not healthy");
                        }
                    }
                }
            }
        }
    }

    fn emit_health(&mut self, sk: &mut Skeleton, h: &Health) {
        tracing::debug!(
            input_fps = ?h.input_fps,
            output_fps = ?h.output_fps,
            restarts = ?h.restart_count,
            state = ?h.state,
            conn_quality = ?h.conn_quality,
            jitter = ?h.jitter,
            packets_lost = ?h.packets_lost,
            rtt_ms = ?h.rtt_ms,
            last_error = ?h.last_error,
            "Daydream status"
        );
        let loss = h.loss_pct.map(|p| (p / 100.0).clamp(0.0, 1.0)).or_else(|| {
            h.packets_lost.map(|l| {
                let total = self.counters.packets.load(Ordering::Relaxed) as f64 + l;
                if total > 0.0 { (l / total) as f32 } else { 0.0 }
            })
        });
        let mut quality_changed = false;
        let mut new_error = None;
        if let Some(s) = self.stream.as_mut() {
            if h.state.is_some() {
                s.server_state = h.state.clone();
            }
            if h.conn_quality.is_some() && h.conn_quality != s.conn_quality {
                quality_changed =
                    s.conn_quality.is_some() || h.conn_quality.as_deref() != Some("good");
                s.conn_quality = h.conn_quality.clone();
            }
            if h.gateway_error.is_some() && h.gateway_error != s.gateway_error {
                s.gateway_error = h.gateway_error.clone();
                new_error = h.gateway_error.as_ref().map(|(m, _)| m.clone());
            }
        }
        if let Some(m) = new_error {
            sk.emit(TransportEvent::Error(format!("Daydream gateway: {m}")));
        }
        if quality_changed && sk.state() == ConnState::Streaming {
            self.streaming(sk);
        }
        sk.emit(TransportEvent::Stats(LinkStats {
            rx_fps: self.rx_fps,
            rtt_ms: h.rtt_ms,
            loss,
            server_fps: h.output_fps,
            reconnects: h.restart_count.unwrap_or(0) + sk.reconnects,
            input_fps: h.input_fps,
            // The gateway reports RTCP-style jitter in seconds; values of 1 or more are taken
            // as already in milliseconds.
            jitter_ms: h.jitter.map(|j| if j < 1.0 { j * 1000.0 } else { j }),
        }));
    }

    fn on_stats_tick(&mut self, sk: &mut Skeleton) {
        let now = sk.now();
        let frames = self.counters.frames.load(Ordering::Relaxed);
        let (t0, f0) = self.last_rx;
        let dt = now.saturating_sub(t0).as_secs_f32();
        if dt > 0.0 {
            self.rx_fps = frames.saturating_sub(f0) as f32 / dt;
        }
        self.last_rx = (now, frames);
        let due = self.stream.as_ref().is_some_and(|s| {
            s.whep_waiting_since.is_some() && now.saturating_sub(s.wait_noted) >= WAIT_NOTE_EVERY
        });
        if due && sk.state() == ConnState::Streaming {
            if let Some(s) = self.stream.as_mut() {
                s.wait_noted = now;
            }
            self.streaming(sk);
        }
    }

    /// "waiting for the first output (n s)" while playback is being retried.
    fn waiting_note(&self) -> Option<String> {
        let s = self.stream.as_ref()?;
        let since = s.whep_waiting_since?;
        let secs = self.clock.elapsed().saturating_sub(since).as_secs();
        let stage = s
            .server_state
            .as_deref()
            .map(|st| format!("; pipeline {st}"))
            .unwrap_or_default();
        Some(format!("waiting for the first output ({secs} s{stage})"))
    }

    fn streaming(&mut self, sk: &mut Skeleton) {
        let has_whep = self.stream.as_ref().is_some_and(|s| s.whep.is_some());
        let quality = self
            .stream
            .as_ref()
            .and_then(|s| s.conn_quality.as_deref())
            .filter(|q| *q != "good")
            .map(|q| format!("; ingest connection {q}"))
            .unwrap_or_default();
        let why = if self.health.unavailable() {
            UNAVAILABLE.to_string()
        } else if has_whep {
            format!("Daydream: ingest and playback connected{quality}")
        } else if let Some(w) = self.waiting_note() {
            format!("Daydream: ingest connected; {w}{quality}")
        } else {
            format!("Daydream: ingest connected; playback connecting{quality}")
        };
        if self.health.unavailable() {
            sk.degrade(why);
            return;
        }
        if matches!(sk.state(), ConnState::Loading | ConnState::Warming) {
            // Active with ingest up in one step: the table goes through connecting.
            sk.go(ConnState::Connecting, "stream active; ingest connected");
        }
        sk.go(ConnState::Streaming, why);
    }

    fn on_whip(&mut self, sk: &mut Skeleton, r: Result<MediaLink, MediaError>) {
        let link = match r {
            Ok(l) => l,
            Err(e) => {
                sk.emit(TransportEvent::Error(format!("video ingest failed: {e}")));
                sk.degrade("WHIP ingest failed; reconnect to retry");
                return;
            }
        };
        tracing::info!("WHIP ingest connected");
        let playback = link.playback_url.clone();
        let active = {
            let Some(s) = self.stream.as_mut() else {
                let http = self.http.clone();
                tokio::spawn(async move { link.close(&http).await });
                return;
            };
            s.whip = Some(watch_media(link, "WHIP", self.inner_tx.clone(), self.epoch));
            s.active
        };
        if active {
            self.streaming(sk);
        }
        match playback {
            Some(p) => self.start_whep(sk, &p),
            None => {
                // Fall back to the gateway's WHEP URL from the status endpoint.
                let hint = self.stream.as_mut().and_then(|s| {
                    s.whep_wanted = true;
                    s.whep_hint.clone()
                });
                match hint {
                    Some(h) => self.start_whep(sk, &h),
                    None => tracing::info!(
                        "the WHIP answer has no `{}` header; waiting for the status endpoint's whep_url",
                        rtc::PLAYBACK_HEADER
                    ),
                }
            }
        }
    }

    /// Starts WHEP playback from `p` (checked against the allowlist first), once per stream.
    fn start_whep(&mut self, sk: &mut Skeleton, p: &str) {
        match self.stream.as_mut() {
            Some(s) if !s.whep_started => {
                s.whep_started = true;
                s.whep_wanted = false;
            }
            _ => return,
        }
        let cfg = &self.setup.cfg;
        let url = match allowlist::check_media_url(p, &cfg.allowed_hosts, cfg.allow_local_dev) {
            Ok(u) => u,
            Err(why) => {
                sk.emit(TransportEvent::Error(format!("WHEP URL refused: {why}")));
                tracing::debug!("refused WHEP URL: {}", redact_url(p));
                return;
            }
        };
        let http = self.http.clone();
        let opts = self.rtc_options(&url);
        let video = crate::transport::VideoPorts {
            samples_in: None,
            ..self.setup.video.clone()
        };
        let counters = Arc::clone(&self.counters);
        // WHEP answers 404 until the first output exists: retried for the playback wait from
        // now, not within the create window (a cold worker takes minutes).
        let now = sk.now();
        let retry = Warmup {
            created_at: now,
            grace: self.setup.cfg.playback_wait(),
            backoff: self.setup.cfg.playback_backoff(),
        };
        if let Some(s) = self.stream.as_mut() {
            s.whep_waiting_since = Some(now);
            s.wait_noted = now;
        }
        if sk.state() == ConnState::Streaming {
            self.streaming(sk);
        }
        let warmup = retry;
        let tx = self.inner_tx.clone();
        let epoch = self.epoch;
        let clock = self.clock;
        tokio::spawn(async move {
            let r = rtc::whep(&http, &url, &opts, video, counters, &warmup, clock).await;
            let _ = tx.send(Inner::Whep(epoch, r)).await;
        });
    }

    fn on_whep(&mut self, sk: &mut Skeleton, r: Result<MediaLink, MediaError>) {
        match r {
            Ok(link) => {
                tracing::info!("WHEP playback connected");
                let active = match self.stream.as_mut() {
                    Some(s) => {
                        s.whep_waiting_since = None;
                        s.whep = Some(watch_media(link, "WHEP", self.inner_tx.clone(), self.epoch));
                        s.active && s.whip.is_some()
                    }
                    None => {
                        let http = self.http.clone();
                        tokio::spawn(async move { link.close(&http).await });
                        return;
                    }
                };
                if active {
                    self.streaming(sk);
                }
            }
            Err(e) => {
                let waited = self
                    .stream
                    .as_mut()
                    .and_then(|s| s.whep_waiting_since.take())
                    .map(|t| sk.now().saturating_sub(t).as_secs());
                let after = waited.map(|w| format!(" after {w} s")).unwrap_or_default();
                sk.emit(TransportEvent::Error(format!(
                    "video playback failed{after}: {e}; reconnect to retry"
                )));
                if sk.state() == ConnState::Streaming {
                    sk.go(
                        ConnState::Degraded,
                        "no playback from Daydream; reconnect to retry",
                    );
                }
            }
        }
    }

    fn try_patch(&mut self, sk: &mut Skeleton) {
        let now = sk.now();
        let Some(s) = &self.stream else { return };
        if !s.active
            || self.patch_in_flight
            || self.health.unavailable()
            || !self.throttle.ready(now)
        {
            return;
        }
        let Some((body, changes)) = self.plan.take_patch() else {
            return;
        };
        self.throttle.sent(now);
        self.patch_in_flight = true;
        sk.emit(TransportEvent::Sent {
            payload: body.clone(),
        });
        let api = self.api.clone();
        let id = s.id.clone();
        let tx = self.inner_tx.clone();
        let epoch = self.epoch;
        tokio::spawn(async move {
            let r = api.patch(&id, &body).await;
            let _ = tx.send(Inner::Patched(epoch, r, changes)).await;
        });
    }

    fn on_patched(
        &mut self,
        sk: &mut Skeleton,
        r: Result<(), HttpFail>,
        changes: Map<String, Value>,
    ) {
        self.patch_in_flight = false;
        let now = sk.now();
        let Some(warmup) = self.stream.as_ref().map(|s| s.warmup) else {
            return;
        };
        let outcome = match &r {
            Ok(()) => Outcome::Ok,
            Err(f) => f.outcome(),
        };
        match self.health.record(outcome, &warmup, now) {
            PatchVerdict::Applied => self.plan.patch_succeeded(changes),
            PatchVerdict::Retry(d) => {
                self.plan.requeue(changes);
                let d = r.as_ref().err().map_or(d, |f| f.pace(d));
                self.throttle.delay(now, d);
            }
            PatchVerdict::Failed { consecutive, retry } => {
                self.plan.requeue(changes);
                let retry = r.as_ref().err().map_or(retry, |f| f.pace(retry));
                self.throttle.delay(now, retry);
                if let Err(f) = &r {
                    sk.emit(TransportEvent::Error(format!(
                        "parameter update failed ({consecutive}/{}): {f}",
                        self.setup.cfg.max_patch_failures
                    )));
                }
            }
            PatchVerdict::Unavailable => {
                self.plan.requeue(changes);
                let why = r.err().map(|f| f.to_string()).unwrap_or_default();
                sk.emit(TransportEvent::Error(format!(
                    "{UNAVAILABLE} (last: {why})"
                )));
                sk.degrade(UNAVAILABLE);
            }
        }
        self.try_patch(sk);
    }

    /// Forgets the stream and returns its goodbye (WHIP/WHEP closed, the stream and any orphans
    /// of failed creates DELETEd), bounded by [`GOODBYE`], to await or run in the background.
    fn teardown(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.epoch += 1;
        self.patch_in_flight = false;
        let stream = self.stream.take();
        let suspects = std::mem::take(&mut self.suspects);
        let keep = stream.as_ref().map(|s| s.id.clone());
        let api = self.api.clone();
        let orphans = async move {
            if suspects.is_empty() {
                return;
            }
            // A create that got no answer or a 5xx may have created a stream anyway: find it
            // by its creation time and delete it, so nothing billed is left running.
            match api.list().await {
                Ok(list) => {
                    for l in list {
                        let matched = l.created_at.is_some_and(|t| {
                            suspects.iter().any(|&(a, b)| {
                                t >= a - ORPHAN_SKEW_SECS && t <= b + ORPHAN_SKEW_SECS
                            })
                        });
                        if matched && Some(&l.id) != keep.as_ref() {
                            match api.delete(&l.id).await {
                                Ok(()) => {
                                    tracing::info!(stream = %l.id, "orphaned Daydream stream deleted")
                                }
                                Err(f) => tracing::warn!("orphaned stream {}: {f}", l.id),
                            }
                        }
                    }
                }
                Err(f) => tracing::warn!(
                    "could not look for a stream a failed create may have left running ({f}); check the Daydream dashboard"
                ),
            }
        };
        let http = self.http.clone();
        let api = self.api.clone();
        let work = async move {
            let Some(s) = stream else {
                orphans.await;
                return;
            };
            let whip = async {
                if let Some(l) = s.whip {
                    l.close(&http).await;
                }
            };
            let whep = async {
                if let Some(l) = s.whep {
                    l.close(&http).await;
                }
            };
            let del = async {
                match api.delete(&s.id).await {
                    Ok(()) => tracing::info!(stream = %s.id, "Daydream stream deleted"),
                    Err(f) => tracing::warn!("{f}"),
                }
            };
            tokio::join!(whip, whep, del, orphans);
        };
        async move {
            if tokio::time::timeout(GOODBYE, work).await.is_err() {
                tracing::warn!("Daydream goodbye took over {GOODBYE:?}; abandoned");
            }
        }
    }

    /// Quit: what is on its way lands first, then the teardown (awaited, bounded).
    async fn goodbye(&mut self) {
        let inner_rx = &mut self.inner_rx;
        // Quit while the stream is being created: wait briefly for it so it can be deleted
        // (a stream left running on the service costs the performer), then stop trying.
        if self.creating.is_some() {
            let end = tokio::time::Instant::now() + Duration::from_millis(1500);
            while let Ok(Some(inner)) = tokio::time::timeout_at(end, inner_rx.recv()).await {
                if let Inner::Created(g, r, suspects) = inner {
                    self.suspects.extend(suspects);
                    if g == self.epoch {
                        if let Ok(c) = r {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                self.api.delete(&c.id),
                            )
                            .await;
                        }
                        break;
                    }
                }
            }
            if let Some(t) = self.create_task.take() {
                t.abort();
            }
        }
        // A PATCH on its way lands before the DELETE, not racing it: the last value the performer
        // sent reaches the stream (and its log) instead of a 404 on a deleted stream.
        if self.patch_in_flight {
            let end = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(inner)) = tokio::time::timeout_at(end, inner_rx.recv()).await {
                if matches!(inner, Inner::Patched(..)) {
                    break;
                }
            }
            self.patch_in_flight = false;
        }
        self.teardown().await;
    }
}
