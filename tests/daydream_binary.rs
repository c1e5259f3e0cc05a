//! The real binary on the `daydream` backend against the LOCAL STAND-IN of Daydream's API
//! (tests/peer/daydream_standin.py, built from docs/daydream-api.md, not the real service, which
//! cannot be reached from here): the API key from the environment is used for the API, never
//! sent to WHIP/WHEP, never written to the log file (trace level) or stdout, and neither is the
//! stream key the WHIP/WHEP paths carry; a key file readable by others is refused with a clear
//! message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daydream::{KEY, Standin, StandinOptions};
use common::deck::Deck;
use serde_json::{Value, json};

fn config(standin: &Standin, extra: &str) -> String {
    format!(
        "[server]\nbackend = \"daydream\"\n[logging]\nlevel = \"trace\"\n[daydream]\napi_url = \"{}\"\nallow_local_dev = true\nice_servers = []\nstatus_poll_secs = 0.5\n{extra}",
        standin.url()
    )
}

/// The built-in `default` theme without its audio mapping: `breath` drives noise_scale (Daydream's
/// `delta`) from the demo audio, and once its hold after a hand-set value runs out (4 s) it
/// rewrites the value; on a loaded machine a hand-set 0.25 still waiting behind the PATCH
/// throttle was then replaced before it was ever sent.
const STILL_THEME: &str = r#"
name = "Still"
prompts = ["cosmic nebula, swirling colors, deep space"]
[params]
noise_scale = 0.7
"#;

#[test]
fn key_is_used_for_the_api_only_and_never_logged() {
    // A redirected WHIP and a WHEP that answers 404 at first: the paths with the stream key go
    // through the retry and redirect logging too, not only the happy path. The first output
    // comes 4 s after ingest starts: WHIP's ICE and DTLS can take well over a second on a fresh
    // machine, and with 1.5 s playback sometimes connected before ingest did, so the "waiting
    // for the first output" state checked below was never shown.
    let standin = Standin::start(StandinOptions {
        whip_redirect: true,
        output_delay: 4.0,
        ..StandinOptions::default()
    });
    let sb = common::Sandbox::new();
    sb.write_config(&config(&standin, "playback_retry_max_secs = 0.5\n"));
    sb.write_theme("default", STILL_THEME);
    let mut deck = Deck::start_with(&sb, |cmd| {
        cmd.env("DAYDREAM_API_KEY", KEY).stderr(Stdio::piped());
    });
    // Each wait has a 40 s deadline of its own (headless prints stats every second).
    let within = Duration::from_secs(40);
    deck.wait_streaming(within);
    deck.send(json!({"action": "set_param", "key": "noise_scale", "value": 0.25}));
    deck.send(json!({"action": "set_prompt", "text": "glass jellyfish", "raw": true}));
    // Two PATCHes or one: the prompt (an urgent command) may overtake the value (latest-wins),
    // so wait for each in whatever order they come; playback connects meanwhile (after a few
    // WHEP 404s), so it is watched for in the same pass. On a loaded machine playback may
    // already be connected when streaming is reported ("ingest and playback connected").
    let playback = |v: &Value| {
        v["event"] == "connection"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("playback connected"))
    };
    let seen = std::cell::Cell::new((false, false, deck.seen.iter().any(playback)));
    let done = deck.wait_until(within, |v| {
        let (mut p, mut d, mut w) = seen.get();
        if v["event"] == "sent" {
            p |= v["payload"]["params"]["prompt"] == "glass jellyfish";
            d |= v["payload"]["params"]["delta"] == 0.25;
        }
        w |= playback(v);
        seen.set((p, d, w));
        seen.get() == (true, true, true)
    });
    let (p, d, w) = seen.get();
    assert!(
        done.is_some(),
        "within {within:?}: prompt sent {p}, delta 0.25 sent {d}, playback connected {w}; \
         last events: {:#?}",
        deck.recent()
    );
    let status = deck.exit_after(json!({"action": "quit"}));
    assert!(status.success(), "exit {status}");
    let stderr = deck.stderr();
    let lines = std::mem::take(&mut deck.stdout);

    // The key went to the API ...
    let api = standin.matching("POST", "/v1/streams");
    assert_eq!(api[0]["headers"]["Authorization"], format!("Bearer {KEY}"));
    let patches = standin.matching("PATCH", "/v1/streams/");
    assert!(
        patches
            .iter()
            .any(|p| p["status"] == 200 && p["body"]["params"]["delta"] == 0.25)
    );
    assert_eq!(
        standin.matching("DELETE", "/v1/streams").len(),
        1,
        "DELETE on quit"
    );
    // ... never to WHIP/WHEP ...
    let media: Vec<Value> = standin
        .requests()
        .into_iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap();
            p.starts_with("/live/video-to-video/")
        })
        .collect();
    assert!(
        media.len() >= 2,
        "WHIP and WHEP offers expected: {media:#?}"
    );
    for r in &media {
        assert!(!r.to_string().contains(KEY), "key sent to {}", r["path"]);
        assert!(r["headers"].get("Authorization").is_none());
    }
    // ... and nowhere in the log file (trace level), stdout or stderr.
    let log = sb.log();
    assert!(
        log.len() > 1000,
        "log file too small to mean anything: {} bytes",
        log.len()
    );
    assert!(
        log.contains("Daydream stream created"),
        "log lacks the session"
    );
    assert!(!log.contains(KEY), "API key in the log file");
    assert!(
        !log.contains("TESTKEY"),
        "part of the API key in the log file"
    );
    assert!(!lines.join("\n").contains("TESTKEY"), "API key on stdout");
    assert!(!stderr.contains("TESTKEY"), "API key on stderr");
    // The stream key is in the WHIP (and WHEP) path: a secret too, nowhere in what we wrote.
    let stream_keys = standin.stream_keys();
    assert_eq!(stream_keys.len(), 1, "{stream_keys:?}");
    assert!(log.contains("WHIP ingest connected"), "log lacks WHIP");
    assert!(log.contains("WHIP redirected to"), "log lacks the redirect");
    assert!(log.contains("WHEP not ready"), "log lacks the WHEP retries");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("waiting for the first output")),
        "no headless waiting state"
    );
    for k in &stream_keys {
        assert!(
            media
                .iter()
                .any(|r| r["path"].as_str().unwrap().contains(k.as_str())),
            "the stream key is not in the media paths: the check below proves nothing"
        );
        assert!(!log.contains(k.as_str()), "stream key in the log file");
        assert!(
            !lines.join("\n").contains(k.as_str()),
            "stream key on stdout"
        );
        assert!(!stderr.contains(k.as_str()), "stream key on stderr");
    }
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let standin = Standin::start(StandinOptions::default());
    let sb = common::Sandbox::new();
    let key = sb.root.path().join("daydream.key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    sb.write_config(&config(
        &standin,
        &format!("api_key_file = \"{}\"\n", key.display()),
    ));
    let out = Command::new(common::bin())
        .args(["--headless", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .env_remove("DAYDREAM_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mode is 644") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("TESTKEY"));
    assert!(
        standin.requests().is_empty(),
        "nothing may be sent without a usable key"
    );
}

/// The real binary wires the video edge to the daydream backend: `[video.input]` test pattern
/// goes out over WHIP (the stand-in decodes it), the stand-in's WHEP frames come back through the
/// output pipeline to an `shm` sink read by a second process (`gst-launch-1.0 shmsrc`).
#[test]
fn binary_streams_test_pattern_in_and_frames_out_to_shm() {
    const W: usize = 256;
    const H: usize = 256;
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        size: (W as u32, H as u32),
        fps: 15.0,
        ..Default::default()
    });
    let sb = common::Sandbox::new();
    let socket = sb.root.path().join("out.shm");
    sb.write_config(&config(
        &standin,
        &format!(
            "[video]\n[[video.sinks]]\nkind = \"shm\"\nsocket = \"{}\"\nformat = \"I420\"\n[video.preview]\nenabled = false\n[video.input]\nsource = \"test_pattern\"\nwidth = 256\nheight = 256\nfps = 15\n",
            socket.display()
        ),
    ).replace("level = \"trace\"", "level = \"info\""));
    let mut deck = Deck::start_with(&sb, |cmd| {
        cmd.env("DAYDREAM_API_KEY", KEY);
    });
    common::wait_for("shm socket", Duration::from_secs(20), || {
        socket.exists().then_some(())
    });
    let reader = common::rtp_gen::ShmReader::start(&socket, W, H);
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let mut ingest = 0;
    while reader.frames_read() < 45 || ingest < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "shm reader got {} frames, stand-in decoded {ingest} ingest frames; log:\n{}",
            reader.frames_read(),
            sb.log()
        );
        std::thread::sleep(Duration::from_millis(200));
        ingest = standin.state()["whip_frames_in"].as_u64().unwrap_or(0);
    }
    // The app sent H.264 (the strict stand-in closes anything else), starting on a key frame.
    let media = standin.state()["media"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        media
            .iter()
            .any(|e| e["kind"] == "keyframe_in" && e["data"]["codec"] == "H264"),
        "{media:?}"
    );
    assert!(
        !media.iter().any(|e| e["kind"] == "whip_closed"),
        "{media:?}"
    );
    let status = deck.exit_after(json!({"action": "quit"}));
    assert!(status.success(), "exit {status}");
    let got = reader.stop();
    let increasing = got.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        increasing * 100 >= (got.len() - 1) * 95,
        "counters not increasing: {got:?}"
    );
    assert_eq!(standin.matching("DELETE", "/v1/streams").len(), 1);
}
