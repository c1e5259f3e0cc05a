//! The deck as a service: `scope-deck serve` runs the show with no terminal and serves the
//! JSON-lines protocol on a Unix socket; `scope-deck attach` is a dashboard or a script client
//! on it (docs/service.md).
//!
//! The engine never waits for a client: its events go to the hub through the usual bounded
//! queue, and the hub copies each line into every client's own bounded queue with `try_send`. A
//! client whose queue is full is dropped (logged with the reason); the others and the show go on.

pub(crate) mod client;
pub mod protocol;
pub mod socket;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::core::action::ActionSource;
use crate::core::effect::Event;
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;
use crate::ui::log_layer::LogLine;
use protocol::{ClientLine, DeckClock, Hello, Line, LineReader, Request, ServiceLine};

/// Lines a client may have waiting before it counts as not reading and is dropped (a few
/// seconds of snapshots at 30 fps plus events).
pub(crate) const CLIENT_QUEUE: usize = 512;

/// One line shared by every client it goes to.
type Shared = Arc<[u8]>;

/// What the service needs from the wiring.
pub struct ServiceIo {
    /// The engine's input queue.
    pub inputs: mpsc::Sender<Msg>,
    /// The engine's events (the headless event queue).
    pub events: mpsc::Receiver<Event>,
    /// The engine's snapshots.
    pub snapshots: watch::Receiver<Arc<UiSnapshot>>,
    /// Log records for attached dashboards' log panes.
    pub logs: Option<mpsc::Receiver<LogLine>>,
    /// Timestamps.
    pub clock: DeckClock,
    /// Backend label for the hello.
    pub backend: String,
    /// The video output's preview frames (when it runs with its preview branch): streamed to
    /// the clients that ask.
    pub preview: Option<watch::Receiver<Option<Arc<crate::video::PreviewFrame>>>>,
}

/// The newest preview frame as a line, shared by every client that asked (encoded once, only
/// while one asks).
type PreviewLines = Arc<watch::Sender<Option<Shared>>>;

struct Slot {
    tx: mpsc::Sender<Shared>,
    attached: Arc<AtomicBool>,
    kick: CancellationToken,
}

enum Reg {
    Add(u64, Slot),
    /// The client asked for the dashboard stream: it gets the recent log lines first.
    Attach(u64),
    Remove(u64),
}

/// Log lines kept for a dashboard that attaches later (its log pane starts with them).
const LOG_BACKLOG: usize = 200;

/// Serves `listener` until `cancel`: accepts same-user connections and fans the engine's
/// events, snapshots and logs out to them.
pub async fn serve(listener: UnixListener, io: ServiceIo, cancel: CancellationToken) {
    let (reg_tx, reg_rx) = mpsc::channel::<Reg>(64);
    let hub = tokio::spawn(hub(
        io.events,
        io.snapshots.clone(),
        io.logs,
        reg_rx,
        io.clock,
        cancel.clone(),
    ));
    let preview_lines = io.preview.map(|frames| {
        let (tx, _) = watch::channel(None);
        let tx: PreviewLines = Arc::new(tx);
        tokio::spawn(encode_previews(
            frames,
            tx.clone(),
            io.clock,
            cancel.clone(),
        ));
        tx
    });
    let capabilities: Vec<String> = preview_lines
        .iter()
        .map(|_| protocol::CAP_PREVIEW.to_string())
        .collect();
    let own = socket::my_uid();
    let next_id = AtomicU64::new(1);
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("deck socket: accept failed: {e}");
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        match stream.peer_cred() {
            Ok(c) if socket::peer_allowed(c.uid(), own) => {}
            Ok(c) => {
                tracing::warn!(
                    client = id,
                    uid = c.uid(),
                    "deck socket: refused a connection from another user"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    client = id,
                    "deck socket: no peer credentials ({e}); refused"
                );
                continue;
            }
        }
        tracing::info!(client = id, "deck socket: client connected");
        let hello = protocol::line(&Hello {
            event: "hello".into(),
            protocol: protocol::PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").into(),
            backend: io.backend.clone(),
            pid: std::process::id(),
            t: io.clock.t(),
            capabilities: capabilities.clone(),
        });
        tokio::spawn(client_session(
            id,
            stream,
            hello,
            reg_tx.clone(),
            SessionIo {
                inputs: io.inputs.clone(),
                snapshots: io.snapshots.clone(),
                preview: preview_lines.clone(),
                clock: io.clock,
            },
            cancel.child_token(),
        ));
    }
    drop(reg_tx);
    let _ = hub.await;
}

/// Copies every engine event, snapshot and log line into the clients' queues, never waiting.
async fn hub(
    mut events: mpsc::Receiver<Event>,
    mut snapshots: watch::Receiver<Arc<UiSnapshot>>,
    mut logs: Option<mpsc::Receiver<LogLine>>,
    mut reg: mpsc::Receiver<Reg>,
    clock: DeckClock,
    cancel: CancellationToken,
) {
    let mut clients: HashMap<u64, Slot> = HashMap::new();
    let mut backlog: std::collections::VecDeque<Shared> = std::collections::VecDeque::new();
    let mut events_open = true;
    let mut snapshots_open = true;
    loop {
        let (line, attached_only): (Shared, bool) = tokio::select! {
            // Registrations first: a client whose first reply arrived is on the list before any
            // event queued after that reply.
            biased;
            _ = cancel.cancelled() => {
                // The engine's last words (`stopping`) still reach everyone.
                while let Ok(ev) = events.try_recv() {
                    let line: Shared = protocol::event_line(&ev, clock.t()).into();
                    for c in clients.values() {
                        let _ = c.tx.try_send(line.clone());
                    }
                }
                break;
            }
            r = reg.recv() => {
                match r {
                    Some(Reg::Add(id, slot)) => { clients.insert(id, slot); }
                    Some(Reg::Attach(id)) => {
                        if let Some(c) = clients.get(&id) {
                            for l in &backlog {
                                let _ = c.tx.try_send(l.clone());
                            }
                            c.attached.store(true, Ordering::Relaxed);
                        }
                    }
                    Some(Reg::Remove(id)) => { clients.remove(&id); }
                    None => break,
                }
                continue;
            }
            ev = events.recv(), if events_open => match ev {
                Some(ev) => (protocol::event_line(&ev, clock.t()).into(), false),
                None => { events_open = false; continue; }
            },
            changed = snapshots.changed(), if snapshots_open => {
                if changed.is_err() {
                    snapshots_open = false;
                    continue;
                }
                let snap = snapshots.borrow_and_update().clone();
                // Serialised once for all attached dashboards, and only when one is attached.
                if !clients.values().any(|c| c.attached.load(Ordering::Relaxed)) {
                    continue;
                }
                let l = protocol::line(&ServiceLine::Snapshot {
                    t: clock.t(),
                    snapshot: Box::new((*snap).clone()),
                });
                (l.into(), true)
            }
            log = async {
                match logs.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match log {
                Some(l) => {
                    let line: Shared = protocol::line(&ServiceLine::Log {
                        t: clock.t(),
                        level: l.level.as_str().to_string(),
                        target: l.target,
                        text: l.text,
                    })
                    .into();
                    if backlog.len() == LOG_BACKLOG {
                        backlog.pop_front();
                    }
                    backlog.push_back(line.clone());
                    (line, true)
                }
                None => { logs = None; continue; }
            },
        };
        clients.retain(|id, c| {
            if attached_only && !c.attached.load(Ordering::Relaxed) {
                return true;
            }
            match c.tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        client = id,
                        "deck socket: client dropped: {CLIENT_QUEUE} lines waiting (it stopped reading)"
                    );
                    c.kick.cancel();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
    // Dropping the queues lets every writer send what is queued and close.
    drop(clients);
}

/// Turns each new preview frame into its line, once for every client that asked, and not at
/// all while none asks. Never waits for a client: the newest line replaces the last.
async fn encode_previews(
    mut frames: watch::Receiver<Option<Arc<crate::video::PreviewFrame>>>,
    lines: PreviewLines,
    clock: DeckClock,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = frames.changed() => if changed.is_err() { return },
        }
        if lines.receiver_count() == 0 {
            continue;
        }
        let frame = frames.borrow_and_update().clone();
        if let Some(f) = frame {
            lines.send_replace(Some(protocol::preview_line(&f, clock.t()).into()));
        }
    }
}

/// What a connection reads from the deck.
struct SessionIo {
    inputs: mpsc::Sender<Msg>,
    snapshots: watch::Receiver<Arc<UiSnapshot>>,
    preview: Option<PreviewLines>,
    clock: DeckClock,
}

/// Writes one client's lines: its queue in order, and, while it asked for them, the newest
/// preview frame at most [`protocol::PREVIEW_MAX_FPS`] times a second. A frame that arrives
/// while the client is still reading the last one replaces it (latest-wins), so a slow client
/// gets fewer frames and never holds up the show or another client.
async fn write_lines(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Shared>,
    mut wants_preview: watch::Receiver<bool>,
    preview: Option<PreviewLines>,
    kick: CancellationToken,
) {
    let gap = std::time::Duration::from_secs(1) / protocol::PREVIEW_MAX_FPS;
    let mut frames: Option<watch::Receiver<Option<Shared>>> = None;
    let mut next_frame = tokio::time::Instant::now();
    let mut reader_open = true;
    loop {
        let line = tokio::select! {
            biased;
            _ = kick.cancelled() => break,
            l = rx.recv() => match l {
                Some(l) => l,
                None => break,
            },
            changed = wants_preview.changed(), if reader_open => {
                if changed.is_err() {
                    // The reader is gone: what is queued still goes out, frames do not.
                    reader_open = false;
                    frames = None;
                    continue;
                }
                let on = *wants_preview.borrow_and_update();
                frames = match (on, &preview) {
                    (true, Some(p)) => Some(frames.take().unwrap_or_else(|| p.subscribe())),
                    _ => None,
                };
                continue;
            }
            frame = async {
                tokio::time::sleep_until(next_frame).await;
                match frames.as_mut() {
                    Some(f) => f.changed().await.map(|()| f.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            } => match frame {
                Ok(Some(l)) => {
                    next_frame = tokio::time::Instant::now() + gap;
                    l
                }
                Ok(None) => continue,
                Err(_) => {
                    frames = None;
                    continue;
                }
            },
        };
        // A client that stopped reading blocks this write; being dropped ends it too.
        let written = tokio::select! {
            _ = kick.cancelled() => false,
            r = write.write_all(&line) => r.is_ok(),
        };
        if !written {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// One connection: the hello, then lines in (actions, requests) and queued lines out.
async fn client_session(
    id: u64,
    stream: UnixStream,
    hello: Vec<u8>,
    reg: mpsc::Sender<Reg>,
    io: SessionIo,
    stop: CancellationToken,
) {
    let SessionIo {
        inputs,
        snapshots,
        preview,
        clock,
    } = io;
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Shared>(CLIENT_QUEUE);
    let (wants_preview_tx, wants_preview) = watch::channel(false);
    let attached = Arc::new(AtomicBool::new(false));
    let kick = CancellationToken::new();
    // The hello is queued before the hub knows the client, so it is always the first line.
    let _ = tx.try_send(hello.into());
    let slot = Slot {
        tx: tx.clone(),
        attached: attached.clone(),
        kick: kick.clone(),
    };
    if reg.send(Reg::Add(id, slot)).await.is_err() {
        return;
    }
    let has_preview = preview.is_some();
    let writer = tokio::spawn(write_lines(write, rx, wants_preview, preview, kick.clone()));
    let mut lines = LineReader::new(BufReader::new(read), protocol::MAX_LINE);
    let mut source = ActionSource::Script;
    let mut attach_sent = false;
    let mut n = 0usize;
    let reply = |l: Vec<u8>| {
        if tx.try_send(l.into()).is_err() {
            kick.cancel();
        }
    };
    let error = |message: String| {
        protocol::line(&ServiceLine::Error {
            t: clock.t(),
            message,
        })
    };
    let why = loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break "deck stopping",
            _ = kick.cancelled() => break "too slow",
            l = lines.next_line() => l,
        };
        let line = match next {
            Ok(Some(l)) => l,
            Ok(None) => break "left",
            Err(_) => break "connection error",
        };
        n += 1;
        let text = match line {
            Line::Text(t) => t,
            Line::TooLong(len) => {
                reply(error(format!(
                    "socket line {n}: {len} bytes, longer than {} (skipped)",
                    protocol::MAX_LINE
                )));
                continue;
            }
            Line::NotUtf8 => {
                reply(error(format!("socket line {n}: not UTF-8 (skipped)")));
                continue;
            }
        };
        match protocol::client_line(&text) {
            Ok(None) => {}
            Ok(Some(ClientLine::Action(action))) => {
                if inputs.send(Msg::Action { action, source }).await.is_err() {
                    break "deck stopping";
                }
            }
            Ok(Some(ClientLine::Request(Request::GetState))) => {
                let snap = snapshots.borrow().clone();
                reply(protocol::line(&ServiceLine::State {
                    t: clock.t(),
                    snapshot: Box::new((*snap).clone()),
                }));
            }
            Ok(Some(ClientLine::Request(Request::Attach))) => {
                source = ActionSource::Keyboard;
                // The current picture at once, not at the next change; then the hub sends the
                // recent log lines and streams from there.
                let snap = snapshots.borrow().clone();
                reply(protocol::line(&ServiceLine::Snapshot {
                    t: clock.t(),
                    snapshot: Box::new((*snap).clone()),
                }));
                if attach_sent {
                    continue;
                }
                attach_sent = true;
                if reg.send(Reg::Attach(id)).await.is_err() {
                    break "deck stopping";
                }
            }
            Ok(Some(ClientLine::Request(Request::Preview { on }))) => {
                if on && !has_preview {
                    reply(error(format!(
                        "socket line {n}: this deck has no video preview (no `[video]` output with `[video.preview] enabled`)"
                    )));
                }
                wants_preview_tx.send_replace(on && has_preview);
            }
            Err(e) => reply(error(format!("socket line {n}: {e}"))),
        }
    };
    tracing::info!(client = id, "deck socket: client gone ({why})");
    let _ = reg.send(Reg::Remove(id)).await;
    // Lines already queued (answers to what it asked) still go out, then the connection closes.
    drop(tx);
    drop(wants_preview_tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::action::Action;
    use crate::core::state::Level;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    struct Rig {
        path: std::path::PathBuf,
        frames: watch::Sender<Option<Arc<crate::video::PreviewFrame>>>,
        inputs: mpsc::Receiver<Msg>,
        events: mpsc::Sender<Event>,
        logs: mpsc::Sender<LogLine>,
        cancel: CancellationToken,
        server: tokio::task::JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join(socket::SOCKET_NAME);
        let listener = socket::bind(&path).unwrap();
        let (inputs_tx, inputs) = mpsc::channel(64);
        let (events, ev_rx) = mpsc::channel(8192);
        let (logs, log_rx) = mpsc::channel(16);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(UiSnapshot::default()));
        // Keep the snapshot sender alive for the test's length.
        std::mem::forget(snap_tx);
        let (frames, frames_rx) = watch::channel(None);
        let cancel = CancellationToken::new();
        let io = ServiceIo {
            inputs: inputs_tx,
            events: ev_rx,
            snapshots: snap_rx,
            logs: Some(log_rx),
            clock: DeckClock::start(),
            backend: "dry-run".into(),
            preview: Some(frames_rx),
        };
        let server = tokio::spawn(serve(listener, io, cancel.clone()));
        Rig {
            path,
            frames,
            inputs,
            events,
            logs,
            cancel,
            server,
            _dir: dir,
        }
    }

    /// Connects, checks the hello, asks for the state and waits for it: from then on the hub
    /// has the client on its list.
    async fn client(path: &std::path::Path) -> tokio::io::Lines<BufReader<UnixStream>> {
        let mut lines = BufReader::new(UnixStream::connect(path).await.unwrap()).lines();
        let hello = lines.next_line().await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&hello).unwrap();
        assert_eq!(v["event"], "hello");
        assert_eq!(v["protocol"], protocol::PROTOCOL_VERSION);
        lines
            .get_mut()
            .write_all(b"{\"cmd\":\"get_state\"}\n")
            .await
            .unwrap();
        let state = lines.next_line().await.unwrap().unwrap();
        assert!(state.starts_with(r#"{"event":"state""#), "{}", &state[..80]);
        lines
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn actions_reach_the_engine_as_script_or_key_and_bad_lines_answer_only_the_sender() {
        let mut r = rig();
        let mut a = client(&r.path).await;
        a.get_mut()
            .write_all(b"{\"action\":\"theme_next\"}\n{\"action\":\"fly\"}\n{\"cmd\":\"attach\"}\n{\"action\":\"theme_prev\"}\n")
            .await
            .unwrap();
        let first = r.inputs.recv().await.unwrap();
        assert_eq!(
            first,
            Msg::Action {
                action: Action::ThemeNext,
                source: ActionSource::Script
            }
        );
        let err = a.next_line().await.unwrap().unwrap();
        assert!(
            err.contains(r#""event":"error""#)
                && err.contains("socket line 3")
                && err.contains("fly"),
            "{err}"
        );
        let snap = a.next_line().await.unwrap().unwrap();
        assert!(
            snap.starts_with(r#"{"event":"snapshot""#),
            "attach streams snapshots"
        );
        assert_eq!(
            r.inputs.recv().await.unwrap(),
            Msg::Action {
                action: Action::ThemePrev,
                source: ActionSource::Keyboard
            }
        );
        r.cancel.cancel();
        r.server.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_is_dropped_and_the_others_get_everything() {
        let r = rig();
        let mut slow = client(&r.path).await;
        let mut fast = client(&r.path).await;
        const N: usize = 3000;
        let message = "m".repeat(4096);
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while n < N {
                let l = fast.next_line().await.unwrap().unwrap();
                if l.contains(r#""event":"notice""#) {
                    n += 1;
                }
            }
            (n, fast)
        });
        for _ in 0..N {
            r.events
                .send(Event::Notice {
                    level: Level::Info,
                    message: message.clone(),
                })
                .await
                .unwrap();
        }
        let (n, _fast) = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, N);
        // The slow client got what fitted, then its connection was closed by the deck.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            slow.get_mut().read_to_end(&mut rest),
        )
        .await
        .unwrap();
        assert!(read.is_ok());
        let got = rest
            .split(|&b| b == b'\n')
            .filter(|l| l.windows(8).any(|w| w == b"\"notice\""))
            .count();
        assert!(got < N, "the slow client was not dropped ({got} of {N})");
        r.cancel.cancel();
    }

    /// A 64×64 frame, as the preview branch makes by default.
    fn frame(seq: u64) -> Arc<crate::video::PreviewFrame> {
        Arc::new(crate::video::PreviewFrame {
            width: 64,
            height: 64,
            rgb: vec![(seq % 251) as u8; 64 * 64 * 3],
            seq,
        })
    }

    /// Reads lines until `pred`, counting preview lines on the way.
    async fn until(
        c: &mut tokio::io::Lines<BufReader<UnixStream>>,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> (serde_json::Value, usize) {
        let mut previews = 0;
        loop {
            let l = tokio::time::timeout(std::time::Duration::from_secs(30), c.next_line())
                .await
                .expect("a line within 30 s")
                .unwrap()
                .expect("the deck closed the connection");
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["event"] == "preview" {
                previews += 1;
            }
            if pred(&v) {
                return (v, previews);
            }
        }
    }

    /// Preview frames go to the client that asked and to no other; they are whole frames.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn preview_frames_go_only_to_the_clients_that_asked() {
        let r = rig();
        let mut asked = client(&r.path).await;
        let mut not = client(&r.path).await;
        asked
            .get_mut()
            .write_all(b"{\"cmd\":\"preview\",\"on\":true}\n{\"cmd\":\"get_state\"}\n")
            .await
            .unwrap();
        // The state answer comes after the request was read: from here frames reach it.
        until(&mut asked, |v| v["event"] == "state").await;
        let mut got = None;
        for seq in 1..=200u64 {
            r.frames.send_replace(Some(frame(seq)));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if seq % 10 == 0 {
                r.events
                    .send(Event::Notice {
                        level: Level::Info,
                        message: format!("fence {seq}"),
                    })
                    .await
                    .unwrap();
                let (_, n) = until(&mut asked, |v| v["event"] == "notice").await;
                if n > 0 {
                    got = Some(seq);
                    break;
                }
            }
        }
        assert!(
            got.is_some(),
            "no preview frame reached the client that asked"
        );
        // The other one got the notices and no frame.
        let (_, n) = until(&mut not, |v| {
            v["message"] == format!("fence {}", got.unwrap())
        })
        .await;
        assert_eq!(n, 0, "a client that did not ask got preview frames");
        r.cancel.cancel();
    }

    /// A client that asked for frames and never reads costs nobody anything: another client
    /// keeps getting frames and every event, and frames never fill the stalled client's queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_does_not_stall_anothers_preview_or_events() {
        let r = rig();
        let mut stalled = client(&r.path).await;
        stalled
            .get_mut()
            .write_all(b"{\"cmd\":\"preview\",\"on\":true}\n")
            .await
            .unwrap();
        let mut reader = client(&r.path).await;
        reader
            .get_mut()
            .write_all(b"{\"cmd\":\"preview\",\"on\":true}\n{\"cmd\":\"get_state\"}\n")
            .await
            .unwrap();
        until(&mut reader, |v| v["event"] == "state").await;
        // 400 frames of 12 KiB (about 6 MB of lines, far more than a socket buffer holds): the
        // stalled client's writer blocks early; the reader's must not.
        const FRAMES: u64 = 400;
        let mut frames_seen = 0;
        for seq in 1..=FRAMES {
            r.frames.send_replace(Some(frame(seq)));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if seq % 50 == 0 {
                r.events
                    .send(Event::Notice {
                        level: Level::Info,
                        message: format!("fence {seq}"),
                    })
                    .await
                    .unwrap();
                let want = format!("fence {seq}");
                let (_, n) = until(&mut reader, |v| v["message"] == want).await;
                frames_seen += n;
            }
        }
        assert!(
            frames_seen >= 5,
            "the reading client got only {frames_seen} frames while another stalled"
        );
        // Frames never queue: the stalled client is still connected (not dropped for a full
        // queue) and what it finally reads is a handful of frames, not hundreds.
        assert!(!r.cancel.is_cancelled());
        r.events
            .send(Event::Notice {
                level: Level::Info,
                message: "last".into(),
            })
            .await
            .unwrap();
        let (_, n) = until(&mut stalled, |v| v["message"] == "last").await;
        assert!(
            (n as u64) < FRAMES / 2,
            "the stalled client was sent {n} frames: they queued instead of latest-wins"
        );
        r.cancel.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dashboard_attaching_later_gets_the_recent_log_lines() {
        let r = rig();
        let attach = |mut c: tokio::io::Lines<BufReader<UnixStream>>| async move {
            c.get_mut()
                .write_all(b"{\"cmd\":\"attach\"}\n")
                .await
                .unwrap();
            let snap = c.next_line().await.unwrap().unwrap();
            assert!(snap.starts_with(r#"{"event":"snapshot""#));
            c
        };
        let mut first = attach(client(&r.path).await).await;
        r.logs
            .send(LogLine {
                level: tracing::Level::WARN,
                target: "scope_deck::test".into(),
                text: "before the second dashboard".into(),
            })
            .await
            .unwrap();
        let live = first.next_line().await.unwrap().unwrap();
        assert!(live.contains("before the second dashboard"), "{live}");
        let mut second = attach(client(&r.path).await).await;
        let back = second.next_line().await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(v["event"], "log");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["text"], "before the second dashboard");
        r.cancel.cancel();
    }
}
