//! A miniature engine for transport tests: the real pure core (`update`) in front of a real
//! transport, so values are validated and clamped exactly as in the app.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use scope_deck::core::effect::Effect;
use scope_deck::core::state::CoreSettings;
use scope_deck::core::{Action, ActionSource, AppState, Msg, update};
use scope_deck::transport::config::ServerConfig;
use scope_deck::transport::types::RtpPacket;
use scope_deck::transport::{
    ConnState, TransportCmd, TransportEvent, TransportHandle, VideoPorts, spawn_with_video,
};
use tokio::sync::mpsc;

/// Core + transport, events recorded.
pub struct Rig {
    /// The reducer's state.
    pub state: AppState,
    handle: Option<TransportHandle>,
    events: mpsc::Receiver<TransportEvent>,
    t0: Instant,
    /// Every transport event seen, in order.
    pub seen: Vec<TransportEvent>,
    /// Received RTP (when asked for).
    pub rtp: Option<mpsc::Receiver<RtpPacket>>,
    /// `seen[..checked]` have been offered to an `until` predicate.
    checked: usize,
}

/// A config for the test peer at `url`: fast polls and backoff so tests stay short.
pub fn fast_config(url: &str) -> ServerConfig {
    ServerConfig {
        url: url.to_string(),
        pipeline_ids: vec!["longlive".into()],
        status_poll_ms: 50,
        health_poll_ms: 100,
        reconnect_initial_ms: 50,
        reconnect_max_ms: 500,
        no_frames_timeout_s: 1.5,
        warmup_expected_s: 1.0,
        request_timeout_s: 5.0,
        ..ServerConfig::default()
    }
}

impl Rig {
    /// Starts the transport for `cfg` and sends `Msg::Started` (→ Connect with the full state).
    pub async fn start(cfg: &ServerConfig, with_rtp: bool) -> Rig {
        Rig::start_with(cfg, with_rtp, |_| {}).await
    }

    /// Like [`Rig::start`], with the core settings adjusted by `tweak` first.
    pub async fn start_with(
        cfg: &ServerConfig,
        with_rtp: bool,
        tweak: impl FnOnce(&mut CoreSettings),
    ) -> Rig {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (etx, erx) = mpsc::channel(4096);
        let (rtp_tx, rtp_rx) = if with_rtp {
            let (t, r) = mpsc::channel(1024);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let video = VideoPorts {
            rtp_out: rtp_tx,
            samples_in: None,
            ..VideoPorts::default()
        };
        let handle = spawn_with_video(cfg, false, etx, video).unwrap();
        let mut settings = CoreSettings {
            backend: "scope".into(),
            server: cfg.url.clone(),
            confirm_quit: false,
            ..CoreSettings::default()
        };
        tweak(&mut settings);
        let mut rig = Rig {
            state: AppState::new(settings),
            handle: Some(handle),
            events: erx,
            t0: Instant::now(),
            seen: Vec::new(),
            rtp: rtp_rx,
            checked: 0,
        };
        rig.msg(Msg::Started).await;
        rig
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Runs one message through the reducer and forwards transport effects as the engine
    /// does: the desired state published first, then the commands.
    pub async fn msg(&mut self, m: Msg) {
        let now = self.now();
        let fx = update(&mut self.state, m, now);
        self.publish();
        for e in fx {
            if let Effect::Transport(cmd) = e {
                self.send(cmd).await;
            }
        }
    }

    /// Publishes the store's full state (the transport reads it on every connect).
    fn publish(&self) {
        let store = &self.state.params.store;
        self.handle
            .as_ref()
            .unwrap()
            .link
            .publish(store.full_state(), store.schemas_merged());
    }

    /// A performer action (as if from MIDI).
    pub async fn action(&mut self, a: Action) {
        self.msg(Msg::Action {
            action: a,
            source: ActionSource::Midi,
        })
        .await;
    }

    /// Sends a command, draining events meanwhile (the rig may wait for room on the urgent
    /// lane; the real engine never does).
    pub async fn send(&mut self, cmd: TransportCmd) {
        let link = self.handle.as_ref().unwrap().link.clone();
        let fut = link.send_waiting(cmd);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => { r.unwrap(); return; }
                ev = self.events.recv() => if let Some(ev) = ev { self.absorb(ev).await },
            }
        }
    }

    async fn absorb(&mut self, ev: TransportEvent) {
        self.seen.push(ev.clone());
        let now = self.now();
        // Feed it back to the core (schema merges, state), ignoring the resulting effects
        // except transport commands (re-clamped values after a schema merge).
        let fx = update(&mut self.state, Msg::Transport(ev), now);
        self.publish();
        for e in fx {
            if let Effect::Transport(cmd) = e {
                let _ = self.handle.as_ref().unwrap().link.send(cmd);
            }
        }
    }

    /// Pumps events until `pred` holds for one (returns true) or `within` passes (false).
    pub async fn until(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&TransportEvent) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    let hit = pred(&ev);
                    self.absorb(ev).await;
                    if hit {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Pumps events until `cond` holds over everything seen so far.
    pub async fn until_seen(
        &mut self,
        within: Duration,
        mut cond: impl FnMut(&[TransportEvent]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if cond(&self.seen) {
                self.checked = self.seen.len();
                return true;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.absorb(ev).await,
                Ok(None) | Err(_) => return cond(&self.seen),
            }
        }
    }

    /// How many times `s` was entered so far.
    pub fn count_state(&self, s: ConnState) -> usize {
        self.states().iter().filter(|x| **x == s).count()
    }

    /// Waits for a state.
    pub async fn until_state(&mut self, s: ConnState, within: Duration) -> bool {
        self.until(
            within,
            |e| matches!(e, TransportEvent::State { state, .. } if *state == s),
        )
        .await
    }

    /// Pumps events for `d` (lets the coalescer and monitors run; not a synchronisation).
    pub async fn pump(&mut self, d: Duration) {
        self.until(d, |_| false).await;
    }

    /// Waits until `check` over the peer's log gives a value, folding transport events
    /// meanwhile as the engine would (the transport reads the engine's desired state on
    /// connect, so a rig that stops folding would hand it a stale one).
    pub async fn wait_peer<T>(
        &mut self,
        peer: &super::peer::Peer,
        within: Duration,
        mut check: impl FnMut(&[serde_json::Value]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(t) = check(&peer.entries()) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "peer log condition not met within {within:?}"
            );
            self.pump(Duration::from_millis(20)).await;
        }
    }

    /// States seen so far, in order.
    pub fn states(&self) -> Vec<ConnState> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                TransportEvent::State { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }

    /// Quit through the core (→ Shutdown) and wait for `Stopped` and the task's end.
    pub async fn quit(&mut self) -> bool {
        self.action(Action::ForceQuit).await;
        let ok = self
            .until(Duration::from_secs(10), |e| *e == TransportEvent::Stopped)
            .await;
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
        }
        ok
    }
}
