//! The transport skeleton reads its inbox while a session step never returns: a loopback HTTP
//! server that answers the first set-up requests and then holds one request open forever (Scope:
//! the pipeline load; Daydream: a PATCH). An urgent command (`Reconnect`) and `Shutdown` are still
//! answered within their deadlines, and the engine's lane never refuses a command.
//!
//! The server is a few lines of HTTP/1.1 over a loopback socket (every answer closes its
//! connection); what it received is reported on a channel, so the tests wait on events, not
//! sleeps. Nothing leaves the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use scope_deck::transport::TransportHandle;
use scope_deck::transport::config::ServerConfig;
use scope_deck::transport::daydream::{ApiKey, DaydreamConfig, DaydreamVideo, spawn_with_key};
use scope_deck::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the fake server does with a request.
enum Reply {
    /// Answers with this status and JSON body (and closes the connection).
    Json(u16, Value),
    /// Never answers (the connection stays open until the test ends).
    Hang,
}

/// One request the fake server received: method, path, body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: String,
}

/// Starts the fake server; returns its base URL and the requests it receives.
async fn fake_server(
    route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
) -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let route = Arc::new(route);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (tx, route) = (tx.clone(), Arc::clone(&route));
            tokio::spawn(serve(sock, tx, route));
        }
    });
    (
        url,
        Requests {
            rx,
            seen: Vec::new(),
        },
    )
}

async fn serve(
    mut sock: TcpStream,
    tx: mpsc::UnboundedSender<Seen>,
    route: Arc<impl Fn(&str, &str) -> Reply>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Headers, then `Content-Length` bytes of body.
    let (head_len, body_len) = loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, len);
        }
    };
    while buf.len() < head_len + body_len {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let body = String::from_utf8_lossy(&buf[head_len..head_len + body_len]).to_string();
    let reply = route(&method, &path);
    let _ = tx.send(Seen { method, path, body });
    match reply {
        Reply::Json(status, v) => {
            let text = v.to_string();
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
        Reply::Hang => {
            // Held open: the client's request never completes.
            let _ = sock.read(&mut chunk).await;
            std::future::pending::<()>().await;
        }
    }
}

/// What the fake server received, in order, kept whole so a later wait can find an earlier
/// request.
struct Requests {
    rx: mpsc::UnboundedReceiver<Seen>,
    seen: Vec<Seen>,
}

impl Requests {
    /// Waits (deadline) for a request matching `pred` (already received, or arriving).
    async fn wait(&mut self, what: &str, within: Duration, pred: impl Fn(&Seen) -> bool) -> Seen {
        self.wait_nth(what, within, 1, pred).await
    }

    /// Waits (deadline) until `n` requests matching `pred` were received; returns the `n`th.
    async fn wait_nth(
        &mut self,
        what: &str,
        within: Duration,
        n: usize,
        pred: impl Fn(&Seen) -> bool,
    ) -> Seen {
        let end = Instant::now() + within;
        loop {
            if let Some(s) = self.seen.iter().filter(|s| pred(s)).nth(n - 1) {
                return s.clone();
            }
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Some(s)) => self.seen.push(s),
                Ok(None) => panic!("fake server gone while waiting for {what}"),
                Err(_) => panic!("no {what} within {within:?}; seen {:#?}", self.seen),
            }
        }
    }

    /// How many requests so far match `pred`.
    fn count(&mut self, pred: impl Fn(&Seen) -> bool) -> usize {
        while let Ok(s) = self.rx.try_recv() {
            self.seen.push(s);
        }
        self.seen.iter().filter(|s| pred(s)).count()
    }
}

/// Waits (deadline) for an event matching `pred`; returns how long it took.
async fn event(
    rx: &mut mpsc::Receiver<TransportEvent>,
    what: &str,
    within: Duration,
    pred: impl Fn(&TransportEvent) -> bool,
) -> Duration {
    let start = Instant::now();
    let end = start + within;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return start.elapsed(),
            Ok(Some(ev)) => seen.push(ev),
            Ok(None) => panic!("transport ended while waiting for {what}; seen {seen:#?}"),
            Err(_) => panic!("no {what} within {within:?}; seen {seen:#?}"),
        }
    }
}

/// With a `backend` request (`hung`) held open: a burst of urgent commands is taken, then a
/// `Reconnect` is answered (state `reconnecting`) within a second.
async fn reconnect_is_answered(
    handle: &TransportHandle,
    erx: &mut mpsc::Receiver<TransportEvent>,
    backend: &str,
    hung: &str,
) {
    urgent_burst_is_taken(handle).await;
    // The burst may leave the lane full for a moment (under load the transport has not drained
    // it yet): the Reconnect waits for room, within the same second.
    tokio::time::timeout(
        Duration::from_secs(1),
        handle.link.send_waiting(TransportCmd::Reconnect),
    )
    .await
    .expect("room on the urgent lane for a Reconnect within a second")
    .unwrap();
    let took = event(erx, "reconnecting", Duration::from_secs(1), |e| {
        matches!(e, TransportEvent::State { state: ConnState::Reconnecting, reason: Some(r) } if r.contains("reconnect requested"))
    })
    .await;
    eprintln!("{backend}: Reconnect answered {took:?} into a hung {hung}");
}

/// While the commands are answered, a burst larger than the urgent lane is accepted: the
/// transport keeps reading it (a transport that stopped reading refuses the 65th).
async fn urgent_burst_is_taken(handle: &TransportHandle) {
    for i in 0..200 {
        let mut refused = None;
        for _ in 0..100 {
            match handle.link.send(TransportCmd::Update(ParamUpdate::trigger(
                "reset_cache",
                json!(true),
            ))) {
                Ok(()) => {
                    refused = None;
                    break;
                }
                Err(e) => {
                    refused = Some(e);
                    // The lane is full for a moment: give the transport a turn, then retry.
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        assert!(refused.is_none(), "urgent command {i} refused: {refused:?}");
    }
}

/// Scope: health and status answer, the pipeline load never does. A reconnect and a quit are
/// still answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_answers_commands_while_its_pipeline_load_never_returns() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, mut requests) = fake_server(|method, path| match (method, path) {
        ("GET", "/health") => {
            Reply::Json(200, json!({"status": "healthy", "server_start_time": 1.0}))
        }
        ("GET", "/api/v1/pipeline/status") => Reply::Json(200, json!({"status": "not_loaded"})),
        ("POST", "/api/v1/pipeline/load") => Reply::Hang,
        _ => Reply::Json(404, json!({"detail": "Not Found"})),
    })
    .await;
    let cfg = ServerConfig {
        url,
        pipeline_ids: vec!["longlive".into()],
        // Far longer than the test: only the inbox can end the wait.
        request_timeout_s: 120.0,
        ..ServerConfig::default()
    };
    let (etx, mut erx) = mpsc::channel(256);
    let handle = scope_deck::transport::spawn(&cfg, false, etx).unwrap();
    handle.link.publish_fixed(serde_json::Map::new());
    handle.link.send(TransportCmd::Connect).unwrap();
    requests
        .wait("the pipeline load", Duration::from_secs(10), |s| {
            s.method == "POST" && s.path == "/api/v1/pipeline/load"
        })
        .await;

    reconnect_is_answered(&handle, &mut erx, "scope", "load").await;
    // The new session starts over (and hangs on the load again).
    requests
        .wait_nth("a second load", Duration::from_secs(5), 2, |s| {
            s.method == "POST" && s.path == "/api/v1/pipeline/load"
        })
        .await;

    handle.link.send(TransportCmd::Shutdown).unwrap();
    let took = event(&mut erx, "Stopped", Duration::from_secs(2), |e| {
        *e == TransportEvent::Stopped
    })
    .await;
    eprintln!("scope: Shutdown answered in {took:?} with the load still hung");
    tokio::time::timeout(Duration::from_secs(1), handle.task)
        .await
        .expect("the actor task ends after Stopped")
        .unwrap();
}

/// Daydream: the stream is created and active, a PATCH never answers (nor does the WHIP offer).
/// A reconnect and a quit are still answered at once; the quit still DELETEs the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daydream_answers_commands_while_a_patch_never_returns() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let created = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (url, mut requests) = {
        let created = Arc::clone(&created);
        let port = Arc::new(std::sync::Mutex::new(String::new()));
        let base = Arc::clone(&port);
        let (url, rx) = fake_server(move |method, path| {
            let base = base.lock().unwrap().clone();
            match (method, path) {
                ("POST", "/v1/streams") => {
                    let n = created.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    Reply::Json(
                        201,
                        json!({"id": format!("str_{n}"), "whip_url": format!("{base}/live/whip/{n}")}),
                    )
                }
                ("GET", p) if p.ends_with("/status") => {
                    Reply::Json(200, json!({"success": true, "data": {}}))
                }
                ("PATCH", _) | ("POST", _) => Reply::Hang,
                ("DELETE", _) => Reply::Json(200, json!({})),
                _ => Reply::Json(404, json!({})),
            }
        })
        .await;
        *port.lock().unwrap() = url.clone();
        (url, rx)
    };
    let cfg = DaydreamConfig {
        api_url: url,
        allow_local_dev: true,
        ice_servers: vec![],
        status_poll_secs: 0.5,
        ..Default::default()
    };
    let (etx, mut erx) = mpsc::channel(256);
    let (_stx, srx) = mpsc::channel(8);
    let video = DaydreamVideo {
        samples_in: Some(Arc::new(tokio::sync::Mutex::new(srx))),
        ..DaydreamVideo::default()
    };
    let handle = spawn_with_key(&cfg, None, ApiKey::new("sk_test_stuck"), etx, video).unwrap();
    handle.link.publish_fixed(serde_json::Map::new());
    handle.link.send(TransportCmd::Connect).unwrap();
    event(&mut erx, "stream active", Duration::from_secs(10), |e| {
        matches!(
            e,
            TransportEvent::State {
                state: ConnState::Connecting,
                ..
            }
        )
    })
    .await;
    handle
        .link
        .send(TransportCmd::Update(ParamUpdate::one(
            "guidance_scale",
            json!(2.0),
        )))
        .unwrap();
    let patch = requests
        .wait("the PATCH", Duration::from_secs(5), |s| s.method == "PATCH")
        .await;
    assert!(patch.body.contains("guidance_scale"), "{patch:?}");

    reconnect_is_answered(&handle, &mut erx, "daydream", "PATCH").await;
    requests
        .wait("the second create", Duration::from_secs(5), |s| {
            s.method == "POST" && s.path == "/v1/streams"
        })
        .await;
    // The old stream is deleted in the background.
    requests
        .wait("the first stream's DELETE", Duration::from_secs(5), |s| {
            s.method == "DELETE" && s.path.contains("str_1")
        })
        .await;

    handle.link.send(TransportCmd::Shutdown).unwrap();
    let took = event(&mut erx, "Stopped", Duration::from_secs(3), |e| {
        *e == TransportEvent::Stopped
    })
    .await;
    eprintln!("daydream: Shutdown answered in {took:?}");
    requests
        .wait("the second stream's DELETE", Duration::from_secs(1), |s| {
            s.method == "DELETE" && s.path.contains("str_2")
        })
        .await;
    assert_eq!(created.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        requests.count(|s| s.method == "PATCH"),
        1,
        "one PATCH in flight at a time: the hung one held the rest back"
    );
}

/// An engine that stops reading events cannot stall the transport: with an event channel of one
/// that nobody reads, the (dry-run) transport still takes a burst of urgent commands larger than
/// its lane and sends each; once the engine reads again every event arrives, in order, ending
/// with `Stopped`. (A transport that awaited its event send stopped reading its inbox here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_does_not_read_events_cannot_stall_the_transport() {
    let (etx, mut erx) = mpsc::channel(1);
    let handle = scope_deck::transport::spawn(&ServerConfig::default(), true, etx).unwrap();
    handle.link.publish_fixed(serde_json::Map::new());
    handle.link.send(TransportCmd::Connect).unwrap();
    urgent_burst_is_taken(&handle).await;
    handle.link.send(TransportCmd::Shutdown).unwrap();
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, erx.recv()).await {
        events.push(ev);
    }
    let triggers = events
        .iter()
        .filter(|e| matches!(e, TransportEvent::Sent { payload } if payload.get("reset_cache").is_some()))
        .count();
    assert_eq!(triggers, 200, "every trigger sent once");
    assert_eq!(events.last(), Some(&TransportEvent::Stopped));
    tokio::time::timeout(Duration::from_secs(1), handle.task)
        .await
        .expect("the actor task ends after Stopped")
        .unwrap();
}
