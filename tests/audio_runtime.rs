//! The running audio threads with real sources (demo synth, a WAV file), paced in real time:
//! frames flow on the watch, beats arrive on the engine's input queue, tempo commands reach the
//! beat tracker on the analysis thread, and dropping the handle stops everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use scope_deck::audio::config::{AudioConfig, SourceKind};
use scope_deck::audio::features::{AudioEvent, AudioFrame, TempoSource};
use scope_deck::audio::runtime::{AudioSinks, start};
use scope_deck::audio::tempo::TempoCmd;
use scope_deck::core::msg::Msg;

fn wait_for<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_source_produces_beats_and_obeys_tempo_commands() {
    let cfg = AudioConfig::default();
    assert_eq!(cfg.source, SourceKind::Demo);
    let (ftx, frx) = tokio::sync::watch::channel(AudioFrame::default());
    let (itx, mut irx) = tokio::sync::mpsc::channel::<Msg>(1024);
    let (handle, tempo) = start(
        &cfg,
        AudioSinks {
            frames: ftx,
            inputs: itx,
        },
    )
    .unwrap();
    // The demo plays at 120 BPM: beats arrive, spaced half a second apart once the tracker has
    // settled (its first beats come within half a second, on a tempo still settling for about
    // two seconds; lock time is a benchmark figure, bench/beat, not asserted here).
    let mut beats = Vec::new();
    wait_for(Duration::from_secs(30), || {
        while let Ok(m) = irx.try_recv() {
            if let Msg::AudioEvent(AudioEvent::Beat { time, bpm, .. }) = m {
                beats.push((time, bpm));
            }
        }
        beats.last().is_some_and(|b| b.0 > 4.0).then_some(())
    });
    assert!(beats[0].0 < 3.0, "first beat only at {} s", beats[0].0);
    let (t0, bpm) = beats[beats.len() - 2];
    let (t1, _) = beats[beats.len() - 1];
    assert!((bpm - 120.0).abs() < 2.0, "{bpm}");
    assert!((t1 - t0 - 0.5).abs() < 0.03, "{t0} {t1}");
    // An external clock takes over the tempo.
    tempo
        .try_send(TempoCmd::External {
            bpm: 100.0,
            beat_phase: Some(0.0),
            source: TempoSource::MidiClock,
        })
        .unwrap();
    let f = wait_for(Duration::from_secs(5), || {
        let f = *frx.borrow();
        (f.tempo_source == TempoSource::MidiClock).then_some(f)
    });
    assert!((f.bpm - 100.0).abs() < 0.01);
    tempo.try_send(TempoCmd::ExternalStopped).unwrap();
    wait_for(Duration::from_secs(5), || {
        (frx.borrow().tempo_source == TempoSource::Detected).then_some(())
    });
    let t = Instant::now();
    drop(handle);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        t.elapsed()
    );
}

#[test]
fn missing_file_is_reported_as_an_audio_problem() {
    let cfg = AudioConfig {
        source: SourceKind::File,
        file: "/nonexistent/set.wav".into(),
        ..AudioConfig::default()
    };
    let (ftx, _frx) = tokio::sync::watch::channel(AudioFrame::default());
    let (itx, mut irx) = tokio::sync::mpsc::channel::<Msg>(16);
    let (handle, _tempo) = start(
        &cfg,
        AudioSinks {
            frames: ftx,
            inputs: itx,
        },
    )
    .unwrap();
    let p = wait_for(Duration::from_secs(5), || match irx.try_recv() {
        Ok(Msg::AudioProblem(Some(p))) => Some(p),
        _ => None,
    });
    assert!(
        p.contains("/nonexistent/set.wav") && p.contains("no such file"),
        "{p}"
    );
    drop(handle);
}

#[test]
fn wav_file_source_plays_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clicks.wav");
    let mut s = scope_deck::audio::synth::Sequencer::new(
        48_000,
        scope_deck::audio::synth::TempoMap::Const(120.0),
        scope_deck::audio::synth::Pattern::Clicks,
        0.0,
        true,
    );
    let mut x = vec![0.0f32; 12_000];
    x.extend(s.render(3.0));
    scope_deck::audio::source::wav::write_wav(&path, 48_000, &x).unwrap();
    let cfg = AudioConfig {
        source: SourceKind::File,
        file: path.display().to_string(),
        ..AudioConfig::default()
    };
    let (ftx, frx) = tokio::sync::watch::channel(AudioFrame::default());
    let (itx, mut irx) = tokio::sync::mpsc::channel::<Msg>(1024);
    let started = Instant::now();
    let (handle, _tempo) = start(
        &cfg,
        AudioSinks {
            frames: ftx,
            inputs: itx,
        },
    )
    .unwrap();
    let mut onsets = Vec::new();
    wait_for(Duration::from_secs(10), || {
        while let Ok(m) = irx.try_recv() {
            if let Msg::AudioEvent(AudioEvent::Onset { time, .. }) = m {
                onsets.push(time);
            }
        }
        (onsets.len() >= 4).then_some(())
    });
    // Paced in real time: four clicks (the 4th at 1.75 s of audio) cannot arrive sooner.
    assert!(
        started.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        started.elapsed()
    );
    for w in onsets.windows(2) {
        assert!((w[1] - w[0] - 0.5).abs() < 0.01, "{onsets:?}");
    }
    assert!(frx.borrow().time > 1.5);
    drop(handle);
}

/// A GStreamer source description (what an operator uses for SRT/RTP/UDP audio from the DJ's
/// laptop): here a live `audiotestsrc` ticking every 500 ms.
#[test]
fn gstreamer_description_source_is_analysed() {
    let cfg = AudioConfig {
        source: SourceKind::Gstreamer,
        pipeline: "audiotestsrc is-live=true wave=ticks tick-interval=500000000 volume=0.5".into(),
        ..AudioConfig::default()
    };
    let (ftx, _frx) = tokio::sync::watch::channel(AudioFrame::default());
    let (itx, mut irx) = tokio::sync::mpsc::channel::<Msg>(1024);
    let (handle, _tempo) = start(
        &cfg,
        AudioSinks {
            frames: ftx,
            inputs: itx,
        },
    )
    .unwrap();
    let mut onsets = Vec::new();
    wait_for(Duration::from_secs(15), || {
        while let Ok(m) = irx.try_recv() {
            match m {
                Msg::AudioEvent(AudioEvent::Onset { time, .. }) => onsets.push(time),
                Msg::AudioProblem(Some(p)) => panic!("{p}"),
                _ => {}
            }
        }
        (onsets.len() >= 5).then_some(())
    });
    for w in onsets[1..].windows(2) {
        assert!((w[1] - w[0] - 0.5).abs() < 0.01, "{onsets:?}");
    }
    drop(handle);
}

#[test]
fn unknown_gstreamer_element_names_the_problem() {
    let cfg = AudioConfig {
        source: SourceKind::Gstreamer,
        pipeline: "nosuchsrc port=5004".into(),
        ..AudioConfig::default()
    };
    let (ftx, _frx) = tokio::sync::watch::channel(AudioFrame::default());
    let (itx, mut irx) = tokio::sync::mpsc::channel::<Msg>(16);
    let (handle, _tempo) = start(
        &cfg,
        AudioSinks {
            frames: ftx,
            inputs: itx,
        },
    )
    .unwrap();
    let p = wait_for(Duration::from_secs(10), || match irx.try_recv() {
        Ok(Msg::AudioProblem(Some(p))) => Some(p),
        _ => None,
    });
    assert!(p.contains("nosuchsrc") && p.contains("missing"), "{p}");
    drop(handle);
}
