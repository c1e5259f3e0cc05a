//! Mapping engine cost per audio frame through the real reducer (store validation included),
//! and the snapshot build with the mapping view. Results go to docs/performance.md (## Mapping).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use scope_deck::audio::features::AudioFrame;
use scope_deck::core::msg::Msg;
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::core::update::update;
use scope_deck::mapping::slice::MappingSlice;

fn state_on(id: &str) -> AppState {
    let themes = scope_deck::config::builtin_themes().unwrap();
    let mut s = AppState::new(CoreSettings::default());
    s.mapping = MappingSlice::new(themes, id, 4);
    update(&mut s, Msg::Started, Duration::ZERO);
    s
}

fn frame(t: f64) -> AudioFrame {
    let beats = t * 2.0;
    let kick = (-(beats.fract()) * 9.0).exp() as f32;
    AudioFrame {
        time: t,
        energy: 0.4 + 0.5 * kick,
        flux: kick,
        bands: [kick, 0.4, 0.3 + 0.2 * (t as f32).sin().abs()],
        bpm: 120.0,
        beat_phase: beats.fract() as f32,
        bar_position: (beats % 4.0) as f32,
        confidence: 0.9,
        ..AudioFrame::default()
    }
}

fn bench(c: &mut Criterion) {
    for id in ["synthwave-highway", "neon-foundry"] {
        let mut s = state_on(id);
        let mut i = 0u64;
        c.bench_function(&format!("mapping frame {id}"), |b| {
            b.iter(|| {
                i += 1;
                let t = i as f64 * 0.01;
                update(
                    &mut s,
                    Msg::AudioFrame(frame(t)),
                    Duration::from_secs_f64(t),
                )
            })
        });
    }
    let s = state_on("synthwave-highway");
    c.bench_function("snapshot with mapping view", |b| {
        b.iter(|| UiSnapshot::of(&s, Duration::from_secs(1)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
