//! Dashboard render time at 120×40 with a busy snapshot (meters, params, log, activity).
//! Target ≤ 0.5 ms per frame; results go to docs/performance.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use scope_deck::audio::features::{AudioFrame, SPECTRUM_BARS};
use scope_deck::controls::keymap::Keymap;
use scope_deck::core::action::{Action, ActionSource};
use scope_deck::core::msg::Msg;
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::core::update::update;
use scope_deck::transport::types::{ConnState, TransportEvent};
use scope_deck::ui::log_layer::LogLine;
use scope_deck::ui::render::{ViewState, draw};
use scope_deck::ui::style::UiStyle;

fn busy_snapshot() -> UiSnapshot {
    let mut s = AppState::new(CoreSettings::default());
    let t = |ms| Duration::from_millis(ms);
    update(&mut s, Msg::Started, t(0));
    update(
        &mut s,
        Msg::Transport(TransportEvent::State {
            state: ConnState::Streaming,
            reason: None,
        }),
        t(1),
    );
    for i in 0..20u64 {
        let a = Action::SetParam {
            key: "noise_scale".into(),
            value: serde_json::json!(i as f64 / 20.0),
        };
        update(
            &mut s,
            Msg::Action {
                action: a,
                source: ActionSource::Midi,
            },
            t(10 + i),
        );
    }
    let mut f = AudioFrame {
        rms_db: -12.0,
        peak_db: -2.0,
        bpm: 128.0,
        confidence: 0.9,
        ..AudioFrame::default()
    };
    for i in 0..SPECTRUM_BARS {
        f.spectrum[i] = 1.0 - i as f32 / SPECTRUM_BARS as f32;
    }
    update(&mut s, Msg::AudioFrame(f), t(100));
    UiSnapshot::of(&s, t(100))
}

fn bench(c: &mut Criterion) {
    let snap = busy_snapshot();
    let mut view = ViewState::default();
    for i in 0..50 {
        view.push_log(LogLine {
            level: tracing::Level::INFO,
            target: "scope_deck".into(),
            text: format!("line {i}"),
        });
    }
    let mut errs = Vec::new();
    let keymap = Keymap::from_text(
        "k",
        "default",
        scope_deck::config::EMBEDDED_KEYMAPS[0].1,
        &mut errs,
    )
    .unwrap();
    let style = UiStyle::default();
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    c.bench_function("render_dashboard_120x40", |b| {
        b.iter(|| {
            term.draw(|f| draw(f, &snap, &view, &keymap, &style))
                .unwrap();
        });
    });
    // Worst case: the preview overlay open over the meters (a 64×64 frame scaled into it, in
    // 24-bit colour) with the video row in the connection panel.
    let mut s2 = AppState::new(CoreSettings::default());
    update(&mut s2, Msg::Started, Duration::ZERO);
    let stats = scope_deck::video::VideoStats {
        frames_in: 250,
        latency_ms: 1.7,
        sinks: vec![scope_deck::video::SinkStatus {
            label: "v4l2:/dev/video10".into(),
            running: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    update(
        &mut s2,
        Msg::VideoStats(Box::new(stats)),
        Duration::from_millis(50),
    );
    let snap2 = UiSnapshot::of(&s2, Duration::from_millis(100));
    let rgb = (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect();
    // The preview overlay is the dashboard's own view.
    view.preview_open = true;
    view.preview = Some(std::sync::Arc::new(scope_deck::video::PreviewFrame {
        width: 64,
        height: 64,
        rgb,
        seq: 1,
    }));
    c.bench_function("render_dashboard_120x40_preview", |b| {
        b.iter(|| {
            term.draw(|f| draw(f, &snap2, &view, &keymap, &style))
                .unwrap();
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
