//! Input hygiene on the real [`Analyzer`]: each fault a driver or file can produce (NaN, ±Inf,
//! denormals, DC offset, hard clipping) is spliced into a click track, and onsets and beats must
//! come back at once afterwards.
#![allow(clippy::unwrap_used)]

use crate::audio::dsp::analyzer::{Analyzer, AnalyzerSettings, sanitize};
use crate::audio::features::AudioEvent;

const SR: f32 = 48_000.0;
const BPM: f64 = 120.0;
const SECS: f64 = 20.0;
/// The fault starts here (between the clicks at 8.25 and 8.75 s).
const FAULT_AT: f64 = 8.4;

fn clicks() -> (Vec<f32>, Vec<f64>) {
    let n = (SECS * f64::from(SR)) as usize;
    let mut x = vec![0.0f32; n];
    let mut truth = Vec::new();
    let mut t = 0.25;
    while t < SECS - 0.1 {
        let i0 = (t * f64::from(SR)).round() as usize;
        for (k, v) in x[i0..(i0 + 480).min(n)].iter_mut().enumerate() {
            let e = (-(k as f32) / 60.0).exp();
            *v = 0.8 * e * (2.0 * std::f32::consts::PI * 2000.0 * k as f32 / SR).sin();
        }
        truth.push(i0 as f64 / f64::from(SR));
        t += 60.0 / BPM;
    }
    (x, truth)
}

struct Run {
    /// (event time, stream time when emitted)
    onsets: Vec<(f64, f64)>,
    beats: Vec<f64>,
}

/// Feeds `x` in 128-sample blocks (like a device callback) and checks every frame is finite.
fn run(x: &[f32]) -> Run {
    // The hand-written tracker: these synthetic click tracks test input hygiene, and the dsp
    // tracker is the one tuned on clicks (the learned one is covered by tests/beat_live.rs).
    let mut s = AnalyzerSettings::new(SR);
    s.beat.tracker = crate::audio::dsp::beat::TrackerKind::Dsp;
    let mut a = Analyzer::new(s);
    let mut r = Run {
        onsets: Vec::new(),
        beats: Vec::new(),
    };
    let mut finite = true;
    for c in x.chunks(128) {
        let mut ev = Vec::new();
        a.push(
            c,
            &mut |f| {
                finite &= f.rms_db.is_finite()
                    && f.peak_db.is_finite()
                    && f.energy.is_finite()
                    && f.flux.is_finite()
                    && f.centroid_hz.is_finite()
                    && f.bpm.is_finite()
                    && f.beat_phase.is_finite()
                    && f.bands.iter().chain(&f.spectrum).all(|v| v.is_finite());
            },
            &mut |e| ev.push(e),
        );
        let now = a.time();
        for e in ev {
            match e {
                AudioEvent::Onset { time, .. } => r.onsets.push((time, now)),
                AudioEvent::Beat { time, .. } => r.beats.push(time),
            }
        }
    }
    assert!(finite, "a frame carried a non-finite value");
    r
}

/// Splices a fault into the click track at [`FAULT_AT`] and checks that every click after
/// `fault_end` is found (the first within 50 ms of happening) and beats keep landing on them.
fn resumes_after(name: &str, fault: impl Fn(&mut [f32]), fault_end: f64) {
    let (mut x, truth) = clicks();
    fault(&mut x);
    let r = run(&x);
    let after: Vec<f64> = truth.iter().copied().filter(|t| *t > fault_end).collect();
    assert!(after.len() > 10, "{name}: fault too late in the track");
    for (i, t) in after.iter().enumerate() {
        let hit = r.onsets.iter().find(|(o, _)| (o - t).abs() < 0.01);
        let Some((_, detected)) = hit else {
            panic!(
                "{name}: click at {t:.3} s after the fault has no onset: {:?}",
                r.onsets
            );
        };
        if i == 0 {
            assert!(
                detected - t < 0.05,
                "{name}: first click after the fault ({t:.3} s) detected at {detected:.3} s"
            );
        }
        // Beats carry on through the fault: each click (past the last second) has a beat.
        if *t < SECS - 1.0 {
            assert!(
                r.beats.iter().any(|b| (b - t).abs() < 0.07),
                "{name}: no beat near the click at {t:.3} s; beats {:?}",
                r.beats
            );
        }
    }
}

fn at(t: f64) -> usize {
    (t * f64::from(SR)).round() as usize
}

#[test]
fn a_nan_burst_does_not_stop_the_analysis() {
    resumes_after(
        "NaN burst",
        |x| x[at(FAULT_AT)..at(FAULT_AT + 0.2)].fill(f32::NAN),
        FAULT_AT + 0.2,
    );
}

#[test]
fn a_single_positive_infinity_does_not_stop_the_analysis() {
    resumes_after("+Inf", |x| x[at(FAULT_AT)] = f32::INFINITY, FAULT_AT);
}

#[test]
fn a_single_negative_infinity_does_not_stop_the_analysis() {
    resumes_after("-Inf", |x| x[at(FAULT_AT)] = f32::NEG_INFINITY, FAULT_AT);
}

#[test]
fn infinities_inside_a_click_do_not_stop_the_analysis() {
    // The fault lands on a click itself, mixed with NaN.
    resumes_after(
        "Inf on a click",
        |x| {
            let i = at(8.25) + 10;
            x[i] = f32::INFINITY;
            x[i + 1] = f32::NAN;
            x[i + 2] = f32::NEG_INFINITY;
        },
        8.26,
    );
}

#[test]
fn a_denormal_stretch_does_not_stop_the_analysis() {
    resumes_after(
        "denormals",
        |x| {
            // Everything silent from the fault on turns into denormal dust of both signs.
            for (i, v) in x[at(FAULT_AT)..].iter_mut().enumerate() {
                if *v == 0.0 {
                    *v = if i % 2 == 0 { 1e-40 } else { -1e-39 };
                }
            }
        },
        FAULT_AT,
    );
}

#[test]
fn a_large_dc_offset_does_not_stop_the_analysis() {
    resumes_after(
        "DC offset",
        |x| {
            for v in &mut x[at(FAULT_AT)..] {
                *v = (*v * 0.5 + 0.45).clamp(-1.0, 1.0);
            }
        },
        FAULT_AT,
    );
}

#[test]
fn quiet_clicks_on_a_near_full_scale_dc_offset_are_found() {
    // -20 dB clicks riding on 0.85 DC: the offset holds the auto-gain reference up, yet the
    // log-compressed, whitened flux still finds them (so there is no DC blocker).
    resumes_after(
        "DC offset, quiet clicks",
        |x| {
            for v in &mut x[at(FAULT_AT)..] {
                *v = *v * 0.1 + 0.85;
            }
        },
        FAULT_AT,
    );
}

#[test]
fn hard_clipped_and_overloaded_audio_does_not_stop_the_analysis() {
    resumes_after(
        "hard clip",
        |x| {
            // 40 dB too hot, clipped at full scale...
            for v in &mut x[at(FAULT_AT)..at(14.0)] {
                *v = (*v * 100.0).clamp(-1.0, 1.0);
            }
            // ...then a float stream far beyond full scale.
            for v in &mut x[at(14.0)..] {
                *v *= 1000.0;
            }
        },
        FAULT_AT,
    );
}

#[test]
fn random_bit_patterns_keep_every_frame_finite() {
    // Garbage (every f32 bit pattern, NaN payloads included) then clicks: frames stay finite
    // (checked in `run`) and the clicks after the garbage are found.
    resumes_after(
        "garbage",
        |x| {
            let mut s = 0x9E37_79B9u32;
            for v in &mut x[at(FAULT_AT)..at(FAULT_AT + 0.3)] {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                *v = f32::from_bits(s);
            }
        },
        FAULT_AT + 0.3,
    );
}

#[test]
fn sanitize_maps_faults_to_safe_values() {
    assert_eq!(sanitize(f32::NAN), 0.0);
    assert_eq!(sanitize(f32::INFINITY), 0.0);
    assert_eq!(sanitize(f32::NEG_INFINITY), 0.0);
    assert_eq!(sanitize(1e-39), 0.0);
    assert_eq!(sanitize(-1e-31), 0.0);
    assert_eq!(sanitize(3.0), 1.0);
    assert_eq!(sanitize(-3.0), -1.0);
    assert_eq!(sanitize(0.25), 0.25);
}

#[test]
fn window_and_hop_are_set_in_time() {
    use crate::audio::dsp::analyzer::fft_and_hop_for;
    assert_eq!(fft_and_hop_for(48_000.0), (1024, 256));
    assert_eq!(fft_and_hop_for(44_100.0), (1024, 235));
    assert_eq!(fft_and_hop_for(8_000.0), (256, 43));
    assert_eq!(fft_and_hop_for(96_000.0), (2048, 512));
    assert_eq!(fft_and_hop_for(192_000.0), (4096, 1024));
}

/// The same click track rendered at each rate gives the same onsets (±5 ms) and beats.
#[test]
fn click_tracks_at_8_to_192_khz_give_the_same_onsets() {
    let secs = 12.0;
    let mut reference: Option<Vec<f64>> = None;
    for sr in [
        8_000.0f32, 16_000.0, 22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0,
    ] {
        let n = (secs * f64::from(sr)) as usize;
        let mut x = vec![0.0f32; n];
        let mut truth = Vec::new();
        let mut t = 0.25;
        while t < secs - 0.1 {
            let i0 = (t * f64::from(sr)).round() as usize;
            let len = (0.01 * f64::from(sr)) as usize;
            for (k, v) in x[i0..(i0 + len).min(n)].iter_mut().enumerate() {
                let tk = k as f32 / sr;
                // 1.25 ms decay, 1.5 kHz: the same sound below every Nyquist here.
                *v = 0.8 * (-tk / 0.00125).exp() * (2.0 * std::f32::consts::PI * 1500.0 * tk).sin();
            }
            truth.push(i0 as f64 / f64::from(sr));
            t += 60.0 / BPM;
        }
        let mut a = Analyzer::new(AnalyzerSettings::new(sr));
        let mut onsets = Vec::new();
        let mut beats = Vec::new();
        a.push(&x, &mut |_| {}, &mut |e| match e {
            AudioEvent::Onset { time, .. } => onsets.push(time),
            AudioEvent::Beat { time, .. } => beats.push(time),
        });
        assert_eq!(onsets.len(), truth.len(), "{sr} Hz: {onsets:?}");
        for (o, t) in onsets.iter().zip(&truth) {
            assert!(
                (o - t).abs() < 0.005,
                "{sr} Hz: onset {o:.4} for a click at {t:.4}"
            );
        }
        if let Some(r) = &reference {
            for (o, p) in onsets.iter().zip(r) {
                assert!(
                    (o - p).abs() < 0.005,
                    "{sr} Hz: onset {o:.4} vs {p:.4} at 8 kHz"
                );
            }
        } else {
            reference = Some(onsets.clone());
        }
        assert!(
            (a.detected_bpm() - BPM).abs() / BPM < 0.02 && beats.len() >= 12,
            "{sr} Hz: {} BPM, {} beats",
            a.detected_bpm(),
            beats.len()
        );
    }
}
