//! `scope-deck analyze FILE... --json` through the real binary: exact output shape, only JSON on
//! stdout, and clear errors for bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

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
                "beat_confidence",
                "beat_detect_times",
                "beat_in_bar",
                "beats",
                "bpm",
                "downbeats",
                "duration",
                "model_version",
                "onset_detect_times",
                "onsets",
                "path",
                "sample_rate",
                "tracker"
            ]
        );
        assert_eq!(r["sample_rate"], 44_100);
        assert!((r["duration"].as_f64().unwrap() - 12.25).abs() < 0.01);
        assert_eq!(
            r["tracker"], "learned-1",
            "the learned tracker is the default"
        );
        assert!(
            r["model_version"]
                .as_str()
                .is_some_and(|m| m.starts_with("beatgru"))
        );
        assert!(r["path"].as_str().unwrap().ends_with(name));
        let conf: Vec<f64> = serde_json::from_value(r["beat_confidence"].clone()).unwrap();
        let in_bar: Vec<u32> = serde_json::from_value(r["beat_in_bar"].clone()).unwrap();
        let downbeats: Vec<f64> = serde_json::from_value(r["downbeats"].clone()).unwrap();
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
        assert_eq!(conf.len(), beats.len());
        assert!(conf.iter().all(|c| (0.0..=1.0).contains(c)), "{conf:?}");
        assert!(conf.last().unwrap() > &0.3, "{name}: confidence {conf:?}");
        assert_eq!(in_bar.len(), beats.len());
        assert!(in_bar.iter().all(|b| *b < 4), "{in_bar:?}");
        let expect: Vec<f64> = beats
            .iter()
            .zip(&in_bar)
            .filter(|(_, b)| **b == 0)
            .map(|(t, _)| *t)
            .collect();
        assert!(!downbeats.is_empty());
        assert_eq!(downbeats, expect);
        let found = r["bpm"].as_f64().unwrap();
        assert!((found - bpm).abs() / bpm < 0.02, "{name}: {found}");
    }
}

fn analyze(dir: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .env("XDG_CONFIG_HOME", dir)
        .arg("analyze")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn analyze_bad_file_is_a_clear_error_on_stderr_and_in_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v, err) = analyze(dir.path(), &["/nonexistent/song.flac".as_ref()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("/nonexistent/song.flac") && err.contains("no such file"),
        "{err}"
    );
    let e = &v["song.flac"];
    assert_eq!(e["path"], "/nonexistent/song.flac");
    assert!(e["error"].as_str().unwrap().contains("no such file"), "{e}");
    assert!(e.get("beats").is_none());
}

/// `--beat-model FILE` runs the learned tracker with that file's weights: the committed model
/// with its version string changed in place (same length, so the safetensors header stays
/// valid) shows the new version in the JSON; a file that is not a model is a usage error naming
/// the flag and the file, before any audio is read.
#[test]
fn beat_model_flag_runs_other_weights_and_rejects_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = clicks(dir.path(), "a.wav", 120.0);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/beat/model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let (_, v, _) = analyze(dir.path(), &[a.as_os_str()]);
    let shipped = v["a.wav"]["model_version"].as_str().unwrap().to_string();
    let key = format!("\"model_version\":\"{shipped}\"");
    // The version's last character sits just before the key's closing quote.
    let last = bytes
        .windows(key.len())
        .position(|w| w == key.as_bytes())
        .expect("the version is in the file's header")
        + key.len()
        - 2;
    bytes[last] = if bytes[last] == b'Z' { b'Y' } else { b'Z' };
    let other = String::from_utf8(bytes[last + 1 - shipped.len()..=last].to_vec()).unwrap();
    let cand = dir.path().join("candidate.safetensors");
    std::fs::write(&cand, &bytes).unwrap();
    let (code, v, err) = analyze(
        dir.path(),
        &["--beat-model".as_ref(), cand.as_os_str(), a.as_os_str()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["a.wav"]["model_version"], other.as_str(), "{v}");
    assert!(
        v["a.wav"]["tracker"]
            .as_str()
            .unwrap()
            .starts_with("learned"),
        "{v}"
    );
    let found = v["a.wav"]["bpm"].as_f64().unwrap();
    assert!((found - 120.0).abs() < 2.4, "{found}");

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["analyze", "--beat-model"])
        .arg(&junk)
        .arg(&a)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--beat-model") && err.contains("junk.safetensors"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn one_corrupt_file_in_a_batch_does_not_hide_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = clicks(dir.path(), "a.wav", 120.0);
    let bad = dir.path().join("notes.wav");
    std::fs::write(&bad, b"RIFF\x10\0\0\0WAVEjunk that is not audio").unwrap();
    let b = clicks(dir.path(), "b.wav", 100.0);
    let (code, v, err) = analyze(dir.path(), &[a.as_os_str(), bad.as_os_str(), b.as_os_str()]);
    assert_eq!(code, Some(1), "some failed: {err}");
    assert!(err.contains("notes.wav"), "{err}");
    assert!(err.contains("1 of 3"), "{err}");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3, "{v}");
    assert!(
        obj["notes.wav"]["error"]
            .as_str()
            .unwrap()
            .contains("notes.wav")
    );
    for (name, bpm) in [("a.wav", 120.0), ("b.wav", 100.0)] {
        let r = &obj[name];
        assert!(r.get("error").is_none(), "{r}");
        let found = r["bpm"].as_f64().unwrap();
        assert!((found - bpm).abs() / bpm < 0.02, "{name}: {found}");
        assert!(r["onsets"].as_array().unwrap().len() >= 20);
    }
}

#[test]
fn equal_names_in_different_folders_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["x", "y"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let a = clicks(&dir.path().join("x"), "set.wav", 120.0);
    let b = clicks(&dir.path().join("y"), "set.wav", 100.0);
    let (code, v, err) = analyze(dir.path(), &[a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{v}");
    for (p, bpm) in [(&a, 120.0), (&b, 100.0)] {
        let key = p.display().to_string();
        let r = &obj[&key];
        assert_eq!(r["path"], key.as_str());
        let found = r["bpm"].as_f64().unwrap();
        assert!((found - bpm).abs() / bpm < 0.02, "{key}: {found}");
    }
}

#[test]
fn low_and_high_rate_files_give_the_same_onsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for rate in [8_000u32, 192_000] {
        let mut s = Sequencer::new(rate, TempoMap::Const(120.0), Pattern::Clicks, 0.0, true);
        let mut x = vec![0.0f32; rate as usize / 4];
        x.extend(s.render(10.0));
        let p = dir.path().join(format!("clicks_{rate}.wav"));
        write_wav(&p, rate, &x).unwrap();
        files.push(p);
    }
    let (code, v, err) = analyze(dir.path(), &[files[0].as_os_str(), files[1].as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let onsets = |k: &str| -> Vec<f64> {
        assert_eq!(
            v[k]["sample_rate"].as_u64().unwrap().to_string(),
            &k[7..k.len() - 4]
        );
        serde_json::from_value(v[k]["onsets"].clone()).unwrap()
    };
    let lo = onsets("clicks_8000.wav");
    let hi = onsets("clicks_192000.wav");
    assert_eq!(lo.len(), 20, "{lo:?}");
    assert_eq!(lo.len(), hi.len(), "8 kHz {lo:?}\n192 kHz {hi:?}");
    for (i, (a, b)) in lo.iter().zip(&hi).enumerate() {
        let truth = 0.25 + i as f64 * 0.5;
        assert!(
            (a - truth).abs() < 0.005 && (b - truth).abs() < 0.005,
            "{a} / {b} vs {truth}"
        );
    }
    for k in ["clicks_8000.wav", "clicks_192000.wav"] {
        let bpm = v[k]["bpm"].as_f64().unwrap();
        assert!((bpm - 120.0).abs() < 2.4, "{k}: {bpm}");
    }
}

/// Peak resident memory (KiB) of `scope-deck analyze FILE` as GNU time measures it.
fn peak_rss_kib(dir: &Path, file: &Path) -> u64 {
    let bin = assert_cmd::cargo::cargo_bin("scope-deck");
    let out = std::process::Command::new("/usr/bin/time")
        .env("XDG_CONFIG_HOME", dir)
        .args(["-f", "PEAK_KIB=%M"])
        .arg(bin)
        .arg("analyze")
        .arg(file)
        .output()
        .expect("GNU time (/usr/bin/time) is part of the test setup");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let obj = v.as_object().unwrap();
    assert!(
        obj.values()
            .all(|r| r["onsets"].as_array().unwrap().len() > 10)
    );
    err.lines()
        .find_map(|l| l.strip_prefix("PEAK_KIB="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {err}"))
}

/// Writes `secs` of 120 BPM clicks at 8 kHz as 16-bit PCM, a minute at a time.
fn long_clicks(path: &Path, secs: u32) {
    use std::io::Write;
    let rate = 8_000u32;
    let n = secs * rate;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(b"RIFF").unwrap();
    w.write_all(&(36 + 2 * n).to_le_bytes()).unwrap();
    w.write_all(b"WAVEfmt ").unwrap();
    for v in [
        16u32.to_le_bytes(),
        [1, 0, 1, 0],
        rate.to_le_bytes(),
        (2 * rate).to_le_bytes(),
        [2, 0, 16, 0],
    ] {
        w.write_all(&v).unwrap();
    }
    w.write_all(b"data").unwrap();
    w.write_all(&(2 * n).to_le_bytes()).unwrap();
    for i in 0..n {
        let k = i % (rate / 2);
        let v = if k < 80 {
            let t = k as f32 / rate as f32;
            0.8 * (-t / 0.00125).exp() * (2.0 * std::f32::consts::PI * 1500.0 * t).sin()
        } else {
            0.0
        };
        w.write_all(&((v * 32767.0) as i16).to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn a_long_file_is_analysed_in_bounded_memory() {
    // A 20-minute file (38 MB as f32, 19 MB on disk) against a 1-minute one: decoding block by
    // block, the peak memory of the two runs is the same within a few MB; decoding whole, the
    // long run would need ≥ 38 MB more.
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.wav");
    let long = dir.path().join("long.wav");
    long_clicks(&short, 60);
    long_clicks(&long, 20 * 60);
    let s = peak_rss_kib(dir.path(), &short);
    let l = peak_rss_kib(dir.path(), &long);
    assert!(
        l < s + 8 * 1024,
        "peak memory grows with length: {s} KiB for 1 min, {l} KiB for 20 min"
    );
}
