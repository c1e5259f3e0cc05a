//! State recall through the real binary. Against the aiortc test peer: a headless show sets a
//! theme, a prompt and parameters, the deck is killed with SIGKILL, and `--resume` brings the
//! same values back to the server. Without the peer (dry run): headless without `--resume`
//! leaves the journal and says so in the log; a damaged journal is named and set aside.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

// Two plain themes (no mappings: nothing moves the values but the performer), replacing the
// first two built-ins so `select_theme` index 1 is "cosmic-voyage" = Calm B.
const THEME_A: &str = "name = \"Calm A\"\nprompts = [\"calm a\"]\n";
const THEME_B: &str = "name = \"Calm B\"\nprompts = [\"calm b\"]\n";

fn sandbox(peer_url: &str) -> common::Sandbox {
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{peer_url}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n\
         [audio]\nsource = \"demo\"\n[ui]\ntheme = \"default\"\n"
    ));
    std::fs::create_dir_all(sb.config_dir().join("themes")).unwrap();
    std::fs::write(sb.config_dir().join("themes/default.toml"), THEME_A).unwrap();
    std::fs::write(sb.config_dir().join("themes/cosmic-voyage.toml"), THEME_B).unwrap();
    sb
}

fn deck(sb: &common::Sandbox, extra: &[&str]) -> Child {
    Command::new(common::bin())
        .args(["--headless", "--config-dir"])
        .arg(sb.config_dir())
        .args(extra)
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sessions in order of appearance, each with its last-seen values (the offer's initial
/// parameters, then every data-channel message on top).
fn sessions(entries: &[Value]) -> Vec<(String, BTreeMap<String, Value>)> {
    let mut out: Vec<(String, BTreeMap<String, Value>)> = Vec::new();
    for e in entries {
        let Some(sid) = e["session"].as_str() else {
            continue;
        };
        if !matches!(e["kind"].as_str(), Some("initial" | "message")) {
            continue;
        }
        let i = match out.iter().position(|(s, _)| s == sid) {
            Some(i) => i,
            None => {
                out.push((sid.to_string(), BTreeMap::new()));
                out.len() - 1
            }
        };
        if let Some(o) = e["data"].as_object() {
            for (k, v) in o {
                out[i].1.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn has(values: &BTreeMap<String, Value>, want: &[(&str, Value)]) -> bool {
    want.iter().all(|(k, v)| values.get(*k) == Some(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_show_comes_back_with_resume() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = sandbox(&peer.url());
    let mut child = deck(&sb, &[]);
    let mut stdin = child.stdin.take().unwrap();
    for line in [
        r#"{"action":"select_theme","index":1}"#,
        r#"{"action":"set_prompt","text":"resume me"}"#,
        r#"{"action":"set_param","key":"noise_scale","value":0.42}"#,
        r#"{"action":"set_param","key":"vace_context_scale","value":1.25}"#,
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    let want = [
        ("prompts", json!([{ "text": "resume me", "weight": 1.0 }])),
        ("noise_scale", json!(0.42)),
        ("vace_context_scale", json!(1.25)),
    ];
    let before = peer
        .wait_log(Duration::from_secs(60), |entries| {
            let s = sessions(entries);
            let (_, v) = s.first()?;
            has(v, &want).then(|| v.clone())
        })
        .await;
    let seen_at = Instant::now();
    // The journal follows within its 100 ms capture period (plus the write).
    let journal = sb.state_home().join("scope-deck/state.json");
    common::wait_for(
        "the journal to hold the show",
        Duration::from_secs(5),
        || {
            let text = std::fs::read_to_string(&journal).ok()?;
            let j: Value = serde_json::from_str(&text).ok()?;
            let st = &j["state"];
            (st["theme"] == "cosmic-voyage"
                && st["params"]["noise_scale"] == json!(0.42)
                && st["params"]["vace_context_scale"] == json!(1.25)
                && st["prompts"][0]["text"] == "resume me")
                .then_some(())
        },
    );
    eprintln!(
        "journal caught up {:?} after the peer saw the last change",
        seen_at.elapsed()
    );
    child.kill().unwrap(); // SIGKILL: no goodbye, no last write
    child.wait().unwrap();

    let mut again = deck(&sb, &["--resume"]);
    let after = peer
        .wait_log(Duration::from_secs(60), |entries| {
            let s = sessions(entries);
            let (_, v) = s.get(1)?;
            has(v, &want).then(|| v.clone())
        })
        .await;
    for (k, _) in &want {
        assert_eq!(after.get(*k), before.get(*k), "{k} after --resume");
    }
    let mut stdin = again.stdin.take().unwrap();
    writeln!(stdin, r#"{{"action":"force_quit"}}"#).unwrap();
    let status = common::wait_for("exit", Duration::from_secs(15), || {
        again.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    assert!(sb.log().contains("resuming the last show"), "{}", sb.log());
}

fn run_dry(sb: &common::Sandbox, extra: &[&str], lines: &[&str]) -> (Vec<Value>, String) {
    let out = assert_cmd::Command::cargo_bin("scope-deck")
        .unwrap()
        .args(["--headless", "--dry-run", "--config-dir"])
        .arg(sb.config_dir())
        .args(extra)
        .env("XDG_STATE_HOME", sb.state_home())
        .write_stdin(lines.join("\n"))
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (events, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn last_param(ev: &[Value], key: &str) -> Option<Value> {
    ev.iter()
        .rev()
        .find(|e| e["event"] == "param" && e["key"] == key)
        .map(|e| e["value"].clone())
}

#[test]
fn headless_leaves_the_journal_unless_asked_and_a_bad_one_is_set_aside() {
    let sb = common::Sandbox::new();
    let state_file = sb.state_home().join("show.json");
    let sf = state_file.to_str().unwrap();
    run_dry(
        &sb,
        &["--state-file", sf],
        &[
            r#"{"action":"set_param","key":"noise_scale","value":0.3}"#,
            r#"{"action":"quit"}"#,
        ],
    );
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert!(text.contains("\"noise_scale\": 0.3"), "{text}");

    // Headless without --resume: the journal is left alone, and the log says so.
    let (ev, _) = run_dry(&sb, &["--state-file", sf], &[r#"{"action":"quit"}"#]);
    assert_eq!(last_param(&ev, "noise_scale"), None);
    assert!(sb.log().contains("not resumed"), "{}", sb.log());

    // The journal not taken back was kept as `.prev`; put it back and resume it.
    let prev = sb.state_home().join("show.json.prev");
    assert_eq!(std::fs::read_to_string(&prev).unwrap(), text);
    std::fs::rename(&prev, &state_file).unwrap();
    let (ev, _) = run_dry(
        &sb,
        &["--state-file", sf, "--resume"],
        &[r#"{"action":"quit"}"#],
    );
    assert_eq!(last_param(&ev, "noise_scale"), Some(json!(0.3)));
    assert!(
        ev.iter().any(|e| e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("resumed the last show"))),
        "{ev:?}"
    );

    // A damaged journal: named on stderr, set aside, the show starts fresh.
    std::fs::write(&state_file, "{ not json").unwrap();
    let (ev, stderr) = run_dry(
        &sb,
        &["--state-file", sf, "--resume"],
        &[r#"{"action":"quit"}"#],
    );
    assert!(stderr.contains("show.json"), "{stderr}");
    assert!(stderr.contains("set aside"), "{stderr}");
    assert_eq!(last_param(&ev, "noise_scale"), None);
    let aside = std::fs::read_dir(sb.state_home())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("show.json.bad-")
        });
    assert!(aside, "the damaged journal is kept under another name");
}

/// A journal as a deck writes it, with `prompt` as the show's prompt.
fn write_journal(sb: &common::Sandbox, prompt: &str) -> std::path::PathBuf {
    let dir = sb.state_home().join("scope-deck");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("state.json");
    let doc = json!({
        "format": "scope-deck-state",
        "version": 1,
        "saved_at_unix_ms": 80_040_000u64, // 22:14 UTC
        "state": {
            "prompt": prompt,
            "prompts": [{ "text": prompt, "weight": 1.0 }],
            "params": { "noise_scale": 0.25 }
        }
    });
    std::fs::write(&p, doc.to_string()).unwrap();
    p
}

#[test]
fn the_terminal_offers_the_last_show_with_one_key() {
    use common::tmux::Tmux;
    const T: Duration = Duration::from_secs(30);
    for (key, resumed) in [("y", true), ("n", false)] {
        let sb = common::Sandbox::new();
        let journal = write_journal(&sb, "journal prompt");
        let cmd = common::tmux::app_command(&sb, "--dry-run", "");
        let t = Tmux::start(&cmd, 100, 30);
        t.wait_for_text("resume last show from 22:14 UTC? (y/n)", T);
        t.keys(&[key]);
        t.wait_for_text("STREAMING", T);
        if resumed {
            t.wait_for_text("journal prompt", T);
        } else {
            let prev = journal.with_file_name("state.json.prev");
            common::wait_for("the declined journal kept as .prev", T, || {
                prev.exists().then_some(())
            });
            assert!(!t.screen().contains("journal prompt"), "{}", t.screen());
        }
        t.keys(&["q"]);
        t.wait_for_text("press quit again", T);
        t.keys(&["q"]);
        let screen = t.wait_for_text("EXIT:", T);
        assert!(screen.contains("EXIT:0"), "{screen}");
    }
}

#[test]
fn resume_runs_the_setlist_again_at_the_same_cue() {
    let sb = common::Sandbox::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("setlists/example.toml");
    let state_file = sb.state_home().join("show.json");
    let sf = state_file.to_str().unwrap();
    run_dry(
        &sb,
        &["--state-file", sf, "--setlist", example.to_str().unwrap()],
        &[
            r#"{"action":"cue_jump","cue":"intro"}"#,
            r#"{"action":"cue_next"}"#,
            r#"{"action":"cue_next"}"#,
            r#"{"action":"quit"}"#,
        ],
    );
    let cues = |text: &str| -> Value {
        let j: Value = serde_json::from_str(text).unwrap();
        j["state"]["cues"].clone()
    };
    let first = cues(&std::fs::read_to_string(&state_file).unwrap());
    assert_eq!(first["current"], json!(0), "{first}");
    assert!(first["standby"].as_u64().unwrap() >= 2, "{first}");
    // No --setlist this time: the journal names the file, and the position comes back.
    run_dry(
        &sb,
        &["--state-file", sf, "--resume"],
        &[r#"{"action":"quit"}"#],
    );
    let second = cues(&std::fs::read_to_string(&state_file).unwrap());
    assert_eq!(second, first);
}
