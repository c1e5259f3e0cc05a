//! Tracker-level tests: random weights for shapes and causality, taps and clocks, and the golden
//! fixture of the committed model when the training side has written one.

use super::*;

const SR: f64 = 48_000.0;
const HOP: usize = 256;

fn tracker() -> LearnedTracker {
    let model = gru::random_model(2, 16, 7);
    LearnedTracker::with_model(SR, HOP as f64 / SR, &model).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn any_chunking_gives_the_same_activations() {
    let x: Vec<f32> = (0..48_000)
        .map(|i| {
            if i % 12_000 < 300 {
                ((i as f32) * 0.3).sin()
            } else {
                0.0
            }
        })
        .collect();
    let mut a = tracker();
    let mut acts = Vec::new();
    for (h, c) in x.chunks(HOP).enumerate() {
        a.process((h + 1) as f64 * HOP as f64 / SR, c, &mut |_| {});
        acts.push(a.activation());
    }
    assert_ne!(acts[10], [1.0, 0.0, 0.0]);
    // Causal: changing the future leaves the past alone.
    let mut y = x.clone();
    y[30_000..].iter_mut().for_each(|v| *v = 0.9);
    let mut b = tracker();
    for (h, c) in y.chunks(HOP).enumerate() {
        b.process((h + 1) as f64 * HOP as f64 / SR, c, &mut |_| {});
        if (h + 1) * HOP <= 30_000 {
            assert_eq!(b.activation(), acts[h], "hop {h}");
        }
    }
}

#[test]
fn taps_and_external_clock_hold_the_tempo() {
    let mut t = tracker();
    for i in 0..4 {
        t.command(
            TempoCmd::Tap {
                at_secs: 10.0 + 0.6 * f64::from(i),
            },
            1.0,
        );
    }
    let silence = [0.0f32; HOP];
    let mut beats = Vec::new();
    let mut st = BeatState::default();
    for h in 0..1000 {
        let now = 1.0 + (h + 1) as f64 * HOP as f64 / SR;
        st = t.process(now, &silence, &mut |e| {
            if let AudioEvent::Beat { time, .. } = e {
                beats.push(time)
            }
        });
    }
    assert_eq!(st.source, TempoSource::Tap);
    assert!((st.bpm - 100.0).abs() < 0.01, "{}", st.bpm);
    assert!((beats[0] - 1.6).abs() < 1e-6, "{beats:?}");
    assert!((beats[1] - beats[0] - 0.6).abs() < 1e-6);
    t.command(
        TempoCmd::External {
            bpm: 128.0,
            beat_phase: Some(0.0),
            source: TempoSource::MidiClock,
        },
        8.0,
    );
    let st = t.process(8.0, &silence, &mut |_| {});
    assert_eq!(st.source, TempoSource::MidiClock);
    assert!((st.bpm - 128.0).abs() < 0.01);
    t.command(TempoCmd::ExternalStopped, 9.0);
    let st = t.process(9.0, &silence, &mut |_| {});
    assert_eq!(st.source, TempoSource::Detected);
}

/// `assets/beat/golden.json` (docs/beat-model.md): features and outputs within 1e-4.
#[test]
fn golden_fixture_matches() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/beat/golden.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        // The placeholder model has no fixture; a trained one must.
        let g = Gru::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(g.version().starts_with("placeholder"), "{path} missing");
        return;
    };
    golden::check(&text);
}

mod golden;

/// The demo song's bar, as a cue quantised to the bar sees it: from the first beat on, every
/// beat is the next one in the bar and every downbeat is a real one (the demo is 4/4 at 120 BPM
/// for its first 32 s, bars starting on even seconds). The intro (kick on 1 and 3, hats) says
/// nothing about which kick is beat 1; the tracker must keep its guess rather than flip: the
/// decoder used to follow the filter at once whenever the confidence flickered off between
/// kicks (labels `2 3 2 3 …` for 6 s), and with model 12-07c it moved a right bar for three
/// seconds when the verse came in (cue_e2e saw cue three 6 beats after cue two instead of 8);
/// with model 12-07f the filter leant 2:1 towards the other kick in the intro and the bar moved
/// at 4 s and back at 13 s (a relabel now needs 3:1); with model 12-07l those odds crept to 3:1
/// by 7.5 s, a little per bar (a relabel now also needs the last bar to have gained 1.5:1).
#[test]
fn the_demo_songs_bar_never_jumps() {
    use crate::audio::synth::Sequencer;
    let mut seq = Sequencer::demo(SR as u32);
    let x = seq.render(31.0);
    let mut t = LearnedTracker::new(SR, HOP as f64 / SR).unwrap_or_else(|e| panic!("{e}"));
    let mut beats: Vec<(f64, u32)> = Vec::new();
    for (h, c) in x.chunks(HOP).enumerate() {
        let now = (h + 1) as f64 * HOP as f64 / SR;
        t.process(now, c, &mut |e| {
            if let AudioEvent::Beat { time, in_bar, .. } = e {
                beats.push((time, in_bar))
            }
        });
    }
    assert!(beats.len() > 50, "{beats:?}");
    let jumps: Vec<_> = beats
        .windows(2)
        .filter(|w| w[1].1 != (w[0].1 + 1) % 4)
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(
        jumps.is_empty(),
        "bar label jumps (time, in_bar): {jumps:?}"
    );
    let wrong: Vec<f64> = beats
        .iter()
        .filter(|&&(time, in_bar)| in_bar == 0 && (time / 2.0 - (time / 2.0).round()).abs() > 0.05)
        .map(|&(time, _)| time)
        .collect();
    assert!(wrong.is_empty(), "downbeats off the bar: {wrong:?}");
}

/// The built-in demo song with the committed model: after lock-in every beat comes, the
/// breakdown (bars 12–15: hats and bass, no kick or snare) included, and no beat is sent twice.
/// (The headless beat-trigger test failed on both: a 2.8 s hole in the breakdown and two beats
/// 20 ms apart after a phase correction.)
#[test]
fn the_demo_song_keeps_its_beat_through_the_breakdown() {
    use crate::audio::synth::Sequencer;
    let mut seq = Sequencer::demo(SR as u32);
    let x = seq.render(48.0);
    let mut t = LearnedTracker::new(SR, HOP as f64 / SR).unwrap_or_else(|e| panic!("{e}"));
    let mut beats = Vec::new();
    for (h, c) in x.chunks(HOP).enumerate() {
        let now = (h + 1) as f64 * HOP as f64 / SR;
        t.process(now, c, &mut |e| {
            if let AudioEvent::Beat { time, .. } = e {
                beats.push(time)
            }
        });
    }
    let lock = beats.iter().position(|&b| b > 4.0).unwrap_or(beats.len());
    let gaps: Vec<(f64, f64)> = beats[lock..]
        .windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .filter(|&(_, d)| !(0.3..=0.75).contains(&d))
        .collect();
    assert!(gaps.is_empty(), "irregular beats (time, gap): {gaps:?}");
    assert!(beats.last().is_some_and(|&b| b > 47.0), "{beats:?}");
}
