//! The real-time callback body must never allocate. Run with
//! `cargo test --features alloc-guard --test audio_alloc_guard`: an allocation-checking global
//! allocator (assert_no_alloc) aborts the process if anything inside `assert_no_alloc` allocates.
#![cfg(feature = "alloc-guard")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use scope_deck::audio::dsp::analyzer::{Analyzer, AnalyzerSettings};
use scope_deck::audio::dsp::beat::TrackerKind;
use scope_deck::audio::features::AudioEvent;
use scope_deck::audio::ring::{RingStats, ring};
use scope_deck::audio::source::file::decode_mono;

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

#[test]
fn callback_body_does_not_allocate_for_any_sample_format() {
    let stats = Arc::new(RingStats::default());
    let (mut w, mut r) = ring(4096, 2, 0, stats.clone());
    let f = vec![0.25f32; 1024];
    let i = vec![1000i16; 1024];
    let u = vec![40000u16; 1024];
    let i32s = vec![1i32 << 20; 1024];
    assert_no_alloc(|| {
        for _ in 0..20 {
            w.write_frames(&f);
            w.write_frames(&i);
            w.write_frames(&u);
            w.write_frames(&i32s);
        }
    });
    // The ring filled up, so the overrun path ran under the guard too.
    assert!(stats.overruns.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.callbacks.load(Ordering::Relaxed), 80);
    assert_eq!(r.pop().unwrap(), 0.25);
}

#[test]
fn analysis_hop_does_not_allocate_after_construction() {
    let mut a = Analyzer::new(AnalyzerSettings::new(48_000.0));
    let mut x = vec![0.0f32; 48_000];
    for k in (0..x.len()).step_by(12_000) {
        for (j, v) in x[k..k + 400].iter_mut().enumerate() {
            *v = 0.8 * (-(j as f32) / 50.0).exp() * (j as f32 * 0.3).sin();
        }
    }
    let mut onsets = 0u32;
    let mut frames = 0u32;
    assert_no_alloc(|| {
        a.push(&x, &mut |_| frames += 1, &mut |e| {
            if matches!(e, AudioEvent::Onset { .. }) {
                onsets += 1;
            }
        });
    });
    assert_eq!(frames, 48_000 / 256);
    assert!(onsets >= 3, "{onsets}");
}

/// The learned tracker (front end, GRU, bar-pointer decoder) runs inside the same hop: after
/// construction and a warm-up second it must not allocate either, while it tracks real music
/// (the house fixture, decoded outside the guard).
#[test]
fn learned_tracker_hop_does_not_allocate_after_construction() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio/four_on_floor_128.flac");
    let (x, rate) = decode_mono(&path, 0).unwrap();
    let mut s = AnalyzerSettings::new(rate as f32);
    s.beat.tracker = TrackerKind::Learned;
    let mut a = Analyzer::new(s);
    assert!(
        a.beat_model_version().is_some(),
        "the compiled-in model must load"
    );
    let (warm, rest) = x.split_at(rate as usize);
    a.push(warm, &mut |_| {}, &mut |_| {});
    let mut beats = 0u32;
    assert_no_alloc(|| {
        a.push(rest, &mut |_| {}, &mut |e| {
            if matches!(e, AudioEvent::Beat { .. }) {
                beats += 1;
            }
        });
    });
    // 19 s at 128 BPM: about 38 beats once locked.
    assert!(beats >= 30, "the learned tracker emitted {beats} beats");
}

/// Proves the guard is armed: a child copy of this test binary allocates under the guard and
/// must die.
#[test]
fn guard_catches_an_allocation() {
    if std::env::var_os("SCOPE_DECK_ALLOC_CHILD").is_some() {
        assert_no_alloc(|| {
            let v = vec![1u8; 64];
            std::hint::black_box(v);
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "guard_catches_an_allocation",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SCOPE_DECK_ALLOC_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an allocation under the guard went unnoticed"
    );
}
