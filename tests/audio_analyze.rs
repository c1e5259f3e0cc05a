//! `scope-deck analyze FILE... --json` through the real binary: exact output shape, only JSON on
//! stdout, and clear errors for bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use scope_deck::audio::source::wav::write_wav;
use scope_deck::audio::synth::{Pattern, Sequencer, TempoMap};

fn clicks(dir: &std::path::Path, name: &str, bpm: f64) -> std::path::PathBuf {
    let mut s = Sequencer::new(44_100, TempoMap::Const(bpm), Pattern::Clicks, 0.0, true);
    let mut x = vec![0.0f32; 11_025];
    x.extend(s.render(12.0));
    let p = dir.join(name);
    write_wav(&p, 44_100, &x).unwrap();
    p
}

#[test]
fn analyze_prints_exactly_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let a = clicks(dir.path(), "a.wav", 120.0);
    let b = clicks(dir.path(), "b.wav", 100.0);
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .env("XDG_CONFIG_HOME", dir.path())
        .arg("analyze")
        .arg(&a)
        .arg(&b)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2);
    for (name, bpm) in [("a.wav", 120.0f64), ("b.wav", 100.0)] {
        let r = obj[name].as_object().unwrap();
        let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "beat_detect_times",
                "beats",
                "bpm",
                "onset_detect_times",
                "onsets"
            ]
        );
        let onsets: Vec<f64> = serde_json::from_value(r["onsets"].clone()).unwrap();
        let det: Vec<f64> = serde_json::from_value(r["onset_detect_times"].clone()).unwrap();
        let beats: Vec<f64> = serde_json::from_value(r["beats"].clone()).unwrap();
        let bdet: Vec<f64> = serde_json::from_value(r["beat_detect_times"].clone()).unwrap();
        let period = 60.0 / bpm;
        assert_eq!(
            onsets.len(),
            (12.0 / period).ceil() as usize,
            "{name}: {onsets:?}"
        );
        assert_eq!(det.len(), onsets.len());
        assert_eq!(bdet.len(), beats.len());
        // Clicks start at 0.25 s; onsets are on the grid and emitted after they happen.
        for (i, (o, d)) in onsets.iter().zip(&det).enumerate() {
            let truth = 0.25 + i as f64 * period;
            assert!((o - truth).abs() < 0.01, "{name}: onset {o} vs {truth}");
            assert!(
                *d >= truth && *d - truth < 0.02,
                "{name}: detected at {d} for {truth}"
            );
        }
        assert!(beats.len() >= 8, "{name}: {beats:?}");
        let found = r["bpm"].as_f64().unwrap();
        assert!((found - bpm).abs() / bpm < 0.02, "{name}: {found}");
    }
}

#[test]
fn analyze_bad_file_is_a_clear_error_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.wav");
    std::fs::write(&bad, b"this is not audio").unwrap();
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["analyze", "/nonexistent/song.flac", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/song.flac") && err.contains("no such file"),
        "{err}"
    );
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .env("XDG_CONFIG_HOME", dir.path())
        .arg("analyze")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.wav"));
}
