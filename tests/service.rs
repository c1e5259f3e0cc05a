//! `scope-deck serve` and `attach` through the real binary: the socket's permissions and its
//! owner rules, and the show going on through an SSH drop of its dashboard (tmux) against the
//! aiortc test peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use common::tmux::Tmux;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn serve(sb: &common::Sandbox, socket: &Path, extra: &[&str]) -> Child {
    Command::new(common::bin())
        .args(["--config-dir"])
        .arg(sb.config_dir())
        .args(extra)
        .arg("serve")
        .arg("--socket")
        .arg(socket)
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A raw socket client: lines in on a thread, JSON values out.
struct Conn {
    stream: UnixStream,
    rx: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Conn {
    fn open(socket: &Path) -> Conn {
        let stream = common::wait_for("the deck socket", T, || UnixStream::connect(socket).ok());
        let (tx, rx) = mpsc::channel();
        let read = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(read).lines() {
                let Ok(l) = l else { return };
                let Ok(v) = serde_json::from_str::<Value>(&l) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut c = Conn {
            stream,
            rx,
            seen: Vec::new(),
        };
        let hello = c.next();
        assert_eq!(hello["event"], "hello", "{hello}");
        assert_eq!(hello["protocol"], 2, "{hello}");
        c
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stream, "{line}").unwrap();
    }

    fn next(&mut self) -> Value {
        let v = self.rx.recv_timeout(T).expect("a line from the deck");
        self.seen.push(v.clone());
        v
    }

    fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + T;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} within {T:?}"),
            }
        }
    }

    fn state(&mut self) -> Value {
        self.send(r#"{"cmd":"get_state"}"#);
        self.wait("state", |v| v["event"] == "state")["snapshot"].clone()
    }
}

fn socket_in(sb: &common::Sandbox) -> PathBuf {
    sb.root.path().join("run").join("deck.sock")
}

fn wait_exit(child: &mut Child) -> i32 {
    common::wait_for("the deck to exit", T, || child.try_wait().unwrap())
        .code()
        .unwrap_or(-1)
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

/// The socket is private (folder 0700, socket 0600); a second deck on it is refused with the
/// path named; a socket left by a killed deck is cleaned up by the next; a client can read the
/// state and stop the show; the socket is removed at the end.
#[test]
fn the_socket_is_private_owned_once_and_cleaned_up() {
    let sb = common::Sandbox::new();
    let socket = socket_in(&sb);
    let mut first = serve(&sb, &socket, &["--dry-run"]);
    let mut c = Conn::open(&socket);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);
    let state = c.state();
    assert_eq!(state["backend"], "dry-run", "{state}");
    // The SSH session that started it may hang up: the show goes on.
    assert!(
        Command::new("kill")
            .args(["-HUP", &first.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    common::wait_for("SIGHUP ignored in the log", T, || {
        sb.log().contains("SIGHUP ignored").then_some(())
    });
    assert!(first.try_wait().unwrap().is_none(), "SIGHUP stopped serve");
    assert_eq!(c.state()["lifecycle"], "running");

    let mut second = serve(&sb, &socket, &["--dry-run"]);
    assert_eq!(wait_exit(&mut second), 1);
    let err = stderr_of(&mut second);
    assert!(
        err.contains("another deck") && err.contains(&socket.display().to_string()),
        "{err}"
    );

    // SIGKILL leaves the socket file behind; the next deck replaces it.
    first.kill().unwrap();
    first.wait().unwrap();
    drop(c);
    assert!(socket.exists(), "a killed deck leaves its socket");
    let mut third = serve(&sb, &socket, &["--dry-run"]);
    let mut c = Conn::open(&socket);
    c.send(r#"{"action":"force_quit"}"#);
    c.wait("stopping", |v| v["event"] == "stopping");
    assert_eq!(wait_exit(&mut third), 0, "{}", stderr_of(&mut third));
    assert!(!socket.exists(), "the socket is removed on exit");
    let out = Command::new(common::bin())
        .args(["--config-dir"])
        .arg(sb.config_dir())
        .args(["attach", "--headless", "--socket"])
        .arg(&socket)
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no deck is serving on") && err.contains(&socket.display().to_string()),
        "{err}"
    );
    let log = sb.log();
    assert!(log.contains("removing a stale deck socket"), "{log}");
}

/// The issue's acceptance: `serve` streams to the peer, a dashboard is attached in a terminal,
/// the terminal is killed (an SSH drop) and the dashboard leaves with 0; the show never stops
/// (one data channel, no reconnect, no gap in its messages); a new dashboard shows the same
/// state; two clients see each other's actions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_show_survives_an_ssh_drop_of_its_dashboard() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n",
        peer.url()
    ));
    let socket = socket_in(&sb);
    let mut deck = serve(&sb, &socket, &[]);
    let mut monitor = Conn::open(&socket);
    common::wait_for("streaming", T, || {
        (monitor.state()["transport"]["state"] == "streaming").then_some(())
    });

    // A dashboard in a terminal; its exit code goes to a file (the pane dies with it).
    let code = sb.root.path().join("attach.code");
    let attach_cmd = |code: &Path| {
        format!(
            "trap '' HUP; env XDG_STATE_HOME='{}' '{}' --config-dir '{}' attach --socket '{}'; echo $? > '{}'",
            sb.state_home().display(),
            common::bin().display(),
            sb.config_dir().display(),
            socket.display(),
            code.display(),
        )
    };
    let tui = Tmux::start(&attach_cmd(&code), 100, 30);
    tui.wait_for_text("STREAMING", T);
    let before = monitor.state()["mapping"]["active"].as_u64().unwrap();
    tui.keys(&["Right"]);
    // The key arrives as the dashboard's action (a key press, seen by the other client).
    let action = monitor.wait("the dashboard's action", |v| {
        v["event"] == "action" && v["action"]["action"] == "theme_next"
    });
    assert_eq!(action["source"], "keyboard", "{action}");
    let chosen = common::wait_for("the theme switch", T, || {
        let active = monitor.state()["mapping"]["active"].as_u64()?;
        (active != before).then_some(active)
    });

    // The SSH drop.
    let dropped_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    tui.kill_pane();
    let exit = common::wait_for("the dashboard's exit code", T, || {
        std::fs::read_to_string(&code)
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    assert_eq!(exit.trim(), "0", "the dashboard did not leave cleanly");
    assert!(deck.try_wait().unwrap().is_none(), "the deck stopped");

    // Attach again: the same state, and the monitor's action shows on the new dashboard.
    let code2 = sb.root.path().join("attach2.code");
    let tui2 = Tmux::start(&attach_cmd(&code2), 100, 30);
    tui2.wait_for_text("STREAMING", T);
    let state = monitor.state();
    assert_eq!(state["mapping"]["active"].as_u64(), Some(chosen), "{state}");
    let themes: Vec<String> = state["mapping"]["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let screen = tui2.screen();
    let (target, name) = themes
        .iter()
        .enumerate()
        .find(|(i, n)| *i as u64 != chosen && !screen.contains(n.as_str()))
        .expect("a theme not on screen");
    monitor.send(&format!(r#"{{"action":"select_theme","index":{target}}}"#));
    tui2.wait_for_text(name, T);

    // The show never stopped: one session, one data channel, no long silence around the drop.
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let entries = peer.entries();
    let opens = entries
        .iter()
        .filter(|e| e["kind"] == "channel_open")
        .count();
    assert_eq!(opens, 1, "the data channel reconnected: {entries:#?}");
    assert!(
        !entries.iter().any(|e| e["kind"] == "deleted"),
        "session deleted"
    );
    let times: Vec<f64> = entries
        .iter()
        .filter(|e| e["kind"] == "message")
        .filter_map(|e| e["ts"].as_f64())
        .filter(|t| *t >= dropped_at - 1.0 && *t <= after)
        .collect();
    assert!(
        times.len() > 5,
        "too few messages around the drop: {times:?}"
    );
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        gap < 1.5,
        "a {gap:.2} s gap in the data channel around the drop"
    );

    // q leaves the dashboard only; the monitor stops the show.
    tui2.keys(&["q"]);
    let exit2 = common::wait_for("the second dashboard's exit", T, || {
        std::fs::read_to_string(&code2)
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    assert_eq!(exit2.trim(), "0");
    assert!(
        deck.try_wait().unwrap().is_none(),
        "q on a dashboard stopped the deck"
    );
    monitor.send(r#"{"action":"force_quit"}"#);
    assert_eq!(wait_exit(&mut deck), 0, "{}", stderr_of(&mut deck));
    let log = sb.log();
    assert!(!log.contains("panic"), "{log}");
}

/// The shell command for an attached dashboard in a tmux pane; its exit code goes to `code`.
fn attach_command(sb: &common::Sandbox, socket: &Path, code: &Path) -> String {
    format!(
        "env XDG_STATE_HOME='{}' '{}' --config-dir '{}' attach --socket '{}'; echo $? > '{}'; exec sleep 600",
        sb.state_home().display(),
        common::bin().display(),
        sb.config_dir().display(),
        socket.display(),
        code.display(),
    )
}

/// Each dashboard owns its view: `?` on one opens help there only; a show action pressed on
/// the other still reaches the show and both screens; closing help is that dashboard's own
/// business too. The snapshot no longer carries a deck-wide mode.
#[test]
fn each_attached_dashboard_has_its_own_view_and_both_see_the_show() {
    let sb = common::Sandbox::new();
    let socket = socket_in(&sb);
    let mut deck = serve(&sb, &socket, &["--dry-run"]);
    let mut monitor = Conn::open(&socket);
    let one = Tmux::start(
        &attach_command(&sb, &socket, &sb.root.path().join("one.code")),
        100,
        30,
    );
    let two = Tmux::start(
        &attach_command(&sb, &socket, &sb.root.path().join("two.code")),
        100,
        30,
    );
    one.wait_for_text("STREAMING", T);
    two.wait_for_text("STREAMING", T);
    const HELP: &str = "help — keymap";
    one.keys(&["?"]);
    one.wait_for_text(HELP, T);
    // A show action on the other dashboard: the engine gets it as a key press...
    two.keys(&["Space"]);
    let action = monitor.wait("the second dashboard's action", |v| {
        v["event"] == "action" && v["action"]["action"] == "toggle_pause"
    });
    assert_eq!(action["source"], "keyboard", "{action}");
    // ...both screens show it (the status row stays above the help overlay)...
    let screen_two = two.wait_for_text("PAUSED", T);
    let screen_one = one.wait_for_text("PAUSED", T);
    // ...and the help opened on the first never showed on the second, which has drawn the
    // show's change since; the first still has its help open.
    assert!(!screen_two.contains(HELP), "{screen_two}");
    assert!(screen_one.contains(HELP), "{screen_one}");
    assert!(
        !monitor
            .seen
            .iter()
            .any(|v| v["event"] == "action" && v["action"]["action"] == "toggle_help"),
        "a view key reached the deck"
    );
    let state = monitor.state();
    assert!(state["ui"].get("mode").is_none(), "{}", state["ui"]);
    // Esc closes the first one's help; the second is untouched (still playing keys).
    one.keys(&["Escape"]);
    common::wait_for("help closed on the first", T, || {
        (!one.screen().contains(HELP)).then_some(())
    });
    // The prompt editor's draft is per dashboard: typing on the second never shows on the first.
    two.keys(&["e"]);
    two.wait_for_text("editing (enter sends", T);
    two.type_text("zzqq");
    two.wait_for_text("zzqq", T);
    assert!(!one.screen().contains("zzqq"), "{}", one.screen());
    two.keys(&["Escape"]);
    monitor.send(r#"{"action":"force_quit"}"#);
    assert_eq!(wait_exit(&mut deck), 0, "{}", stderr_of(&mut deck));
    let log = sb.log();
    assert!(!log.contains("panic"), "{log}");
}

/// Preview frames over the socket against the aiortc peer's real video: a client that asked
/// gets whole frames of the configured size; one that did not ask gets none; one that asked and
/// never reads does not stall the first one's frames or its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_frames_reach_only_the_clients_that_ask() {
    use base64::Engine as _;
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    // 160×96 at 10 fps: about 600 KB/s of lines, so a client that never reads fills its
    // socket within a second.
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n\n\
         [[video.sinks]]\nkind = \"custom\"\npipeline = \"fakesink sync=false\"\n\n\
         [video.preview]\nenabled = true\nfps = 10\nwidth = 160\nheight = 96\n",
        peer.url()
    ));
    let socket = socket_in(&sb);
    let mut deck = serve(&sb, &socket, &[]);
    let mut asked = Conn::open(&socket);
    assert_eq!(
        asked.seen[0]["capabilities"],
        serde_json::json!(["preview"]),
        "{}",
        asked.seen[0]
    );
    let mut not_asked = Conn::open(&socket);
    // Never reads past its hello.
    let mut stalled = UnixStream::connect(&socket).unwrap();
    writeln!(stalled, r#"{{"cmd":"preview","on":true}}"#).unwrap();
    asked.send(r#"{"cmd":"preview","on":true}"#);
    let frame = asked.wait("a preview frame", |v| v["event"] == "preview");
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(160), Some(96))
    );
    let rgb = base64::engine::general_purpose::STANDARD
        .decode(frame["rgb"].as_str().unwrap())
        .unwrap();
    assert_eq!(rgb.len(), 160 * 96 * 3);
    assert!(rgb.iter().any(|b| *b > 16), "the peer's video is not black");
    // Frames keep coming for seconds while the stalled client's socket is long full, and
    // events with them (a script action answered on the same connection).
    let start = Instant::now();
    let mut frames = 0;
    let mut seqs = Vec::new();
    while start.elapsed() < Duration::from_secs(4) {
        let v = asked.next();
        if v["event"] == "preview" {
            frames += 1;
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    assert!(
        frames >= 10,
        "{frames} frames in 4 s while another client stalled"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "frames out of order: {seqs:?}"
    );
    asked.send(r#"{"action":"theme_next"}"#);
    asked.wait("the action's event", |v| {
        v["event"] == "action" && v["action"]["action"] == "theme_next"
    });
    // The client that did not ask: its events, no frame.
    not_asked.wait("the action on the other client", |v| {
        v["event"] == "action" && v["action"]["action"] == "theme_next"
    });
    let _ = not_asked.state();
    assert!(
        !not_asked.seen.iter().any(|v| v["event"] == "preview"),
        "a client that did not ask got frames"
    );
    drop(stalled);
    // An attached dashboard asks for frames itself when `v` opens the preview overlay.
    let code = sb.root.path().join("attach.code");
    let tui = Tmux::start(&attach_command(&sb, &socket, &code), 100, 30);
    tui.wait_for_text("STREAMING", T);
    tui.keys(&["v"]);
    tui.wait_for_text("┌ video preview", T);
    let cells = common::wait_for("preview cells on the attached dashboard", T, || {
        let n = tui.screen().matches('▀').count();
        (n >= 32).then_some(n)
    });
    assert!(cells >= 32);
    tui.keys(&["q"]);
    asked.send(r#"{"action":"force_quit"}"#);
    assert_eq!(wait_exit(&mut deck), 0, "{}", stderr_of(&mut deck));
}

/// Another user's connection is refused by the deck itself, not only by the file modes: the
/// socket is opened up on purpose (folders 0755, socket 0666, as a careless `chmod` would), and a
/// client run as `nobody` (`setpriv`, so the test needs root; as another user it says so and
/// checks nothing) gets no hello and the deck logs the refusal with the uid, while the owner's
/// own client still works.
#[test]
fn a_connection_from_another_user_is_refused_even_through_an_open_socket() {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    {
        eprintln!("skipped: running a client as another user needs root");
        return;
    }
    let sb = common::Sandbox::new();
    let socket = socket_in(&sb);
    let mut deck = serve(&sb, &socket, &["--dry-run"]);
    let mut own = Conn::open(&socket);
    let open = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    open(sb.root.path(), 0o755).unwrap();
    open(socket.parent().unwrap(), 0o755).unwrap();
    open(&socket, 0o666).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(common::bin())
        .args(["attach", "--headless", "--socket"])
        .arg(&socket)
        .env("XDG_STATE_HOME", "/tmp")
        .env("HOME", "/tmp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("\"hello\""),
        "another user got a hello: {stdout}"
    );
    common::wait_for("the refusal in the log", T, || {
        let log = sb.log();
        (log.contains("refused a connection from another user") && log.contains("65534"))
            .then_some(())
    });
    // The owner is unaffected.
    assert_eq!(own.state()["backend"], "dry-run");
    own.send(r#"{"action":"force_quit"}"#);
    own.wait("stopping", |v| v["event"] == "stopping");
    assert_eq!(wait_exit(&mut deck), 0, "{}", stderr_of(&mut deck));
}
