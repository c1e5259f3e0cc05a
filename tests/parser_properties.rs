//! Generated inputs for every parser of outside input (issue 16, item 6): config / theme /
//! keymap / style TOML, MIDI bytes, server JSON messages and HTTP bodies, headless lines, WAV
//! files and sample data with NaN/Inf. Properties: no panic, bounded time, and errors that name
//! the place (file and line, or the stdin line).
//!
//! A small seeded generator (no extra dependency): random text and bytes, and mutations of the
//! shipped files (byte flips, cuts, duplicated and inserted TOML/JSON tokens). The case budget
//! is fixed (`SCOPE_DECK_PROPERTY_CASES`, default 300 per parser) and the seed is printed, so a
//! failure is reproducible with `SCOPE_DECK_PROPERTY_SEED`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use scope_deck::config::ConfigError;
use serde_json::Value;

/// xorshift64*: deterministic, good enough to spread cases.
struct Gen(u64);

impl Gen {
    fn new(salt: u64) -> Gen {
        let seed = std::env::var("SCOPE_DECK_PROPERTY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_dec4_u64);
        println!("seed {seed} (salt {salt})");
        Gen((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Mutates `seed` text: flips, cuts, duplicates, inserts tokens that upset parsers.
    fn mutate(&mut self, seed: &str, tokens: &[&str]) -> String {
        let mut b = seed.as_bytes().to_vec();
        for _ in 0..1 + self.below(6) {
            let at = self.below(b.len() + 1);
            match self.below(6) {
                0 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] = self.next() as u8;
                }
                1 => b.truncate(at),
                2 => {
                    let end = (at + self.below(64)).min(b.len());
                    let chunk = b[at..end].to_vec();
                    b.splice(at..at, chunk);
                }
                3 => {
                    let t = self.pick(tokens).as_bytes().to_vec();
                    b.splice(at..at, t);
                }
                4 => {
                    let end = (at + self.below(32)).min(b.len());
                    b.drain(at..end);
                }
                _ => {
                    let n = self.below(16);
                    let noise: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
                    b.splice(at..at, noise);
                }
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }
}

fn cases() -> usize {
    std::env::var("SCOPE_DECK_PROPERTY_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

const TOML_TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\n",
    "{",
    "}",
    ",",
    ".",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-0",
    "9999999999999999999999",
    "true",
    "\"\\u0000\"",
    "#",
    "\t",
    "\r\n",
    "= = =",
    "[normal]\n",
    "[[midi]]\n",
    "mappings = 3\n",
    "\"\u{1F3B5}\"",
    "\\",
];

const JSON_TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "null",
    "true",
    "NaN",
    "1e309",
    "-",
    "\"type\"",
    "\"action\"",
    "\\u0000",
    "\u{1F3B5}",
    "0.000000000000000000001",
    "99999999999999999999",
];

/// Checks the parse result's errors: each names the file it was given and says something.
fn errors_name_the_place(name: &str, text: &str, errs: &[ConfigError]) {
    for e in errs {
        assert_eq!(
            e.file, name,
            "error names another file: {e}\n--- input:\n{text}"
        );
        assert!(!e.message.is_empty(), "empty message: {e:?}");
        assert!(
            e.line <= text.lines().count() + 1,
            "line {} past the end: {e}",
            e.line
        );
    }
}

/// Runs `f` over generated TOML (mutated seeds, random text) and checks the errors.
fn toml_property(
    salt: u64,
    seeds: &[&str],
    mut f: impl FnMut(&str, &str, &mut Vec<ConfigError>) -> bool,
) {
    let mut g = Gen::new(salt);
    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut rejected = 0;
    for i in 0..cases() {
        let text = if i % 5 == 4 {
            String::from_utf8_lossy(&g.bytes(300)).into_owned()
        } else {
            let seed = *g.pick(seeds);
            g.mutate(seed, TOML_TOKENS)
        };
        let name = "gen.toml";
        let mut errs = Vec::new();
        let start = Instant::now();
        let ok = f(name, &text, &mut errs);
        slowest = slowest.max(start.elapsed());
        if !ok {
            rejected += 1;
            assert!(!errs.is_empty(), "rejected without a reason:\n{text}");
            // A syntax error points at a line.
            if errs.iter().any(|e| e.message.contains("TOML")) {
                assert!(errs.iter().any(|e| e.line > 0), "{errs:?}");
            }
        }
        errors_name_the_place(name, &text, &errs);
    }
    println!(
        "{} cases, {rejected} rejected, {:?} total, slowest {slowest:?}",
        cases(),
        t0.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "one parse took {slowest:?}"
    );
}

#[test]
fn config_toml_never_panics_and_names_the_place() {
    let seeds = [
        scope_deck::config::DEFAULT_CONFIG,
        "[audio]\nsource = \"device\"\n",
    ];
    toml_property(1, &seeds, |name, text, errs| {
        scope_deck::config::app::AppConfig::from_text(name, text, errs).is_some()
    });
}

#[test]
fn theme_toml_never_panics_and_names_the_place() {
    let texts: Vec<&str> = scope_deck::config::EMBEDDED_THEMES
        .iter()
        .map(|(_, t)| *t)
        .collect();
    toml_property(2, &texts, |name, text, errs| {
        scope_deck::mapping::theme::Theme::from_text(name, "gen", text, errs).is_some()
    });
}

#[test]
fn keymap_toml_never_panics_and_names_the_place() {
    let texts: Vec<&str> = scope_deck::config::EMBEDDED_KEYMAPS
        .iter()
        .map(|(_, t)| *t)
        .collect();
    toml_property(3, &texts, |name, text, errs| {
        scope_deck::controls::keymap::Keymap::from_text(name, "gen", text, errs).is_some()
    });
}

#[test]
fn style_toml_never_panics_and_names_the_place() {
    let texts: Vec<&str> = scope_deck::config::EMBEDDED_STYLES
        .iter()
        .map(|(_, t)| *t)
        .collect();
    toml_property(4, &texts, |name, text, errs| {
        scope_deck::ui::style::UiStyle::from_text(name, "gen", text, errs).is_some()
    });
}

#[test]
fn headless_lines_never_panic_and_bad_ones_name_their_line() {
    use scope_deck::core::msg::Msg;
    let seeds = [
        r#"{"action":"set_param","key":"noise_scale","value":0.4}"#,
        r#"{"action":"reset_cache"}"#,
        r#"{"action":"set_scope_output","output":"ndi","enabled":true}"#,
        r#"{"action":"select_theme","index":3}"#,
    ];
    let mut g = Gen::new(5);
    for i in 0..cases() {
        let line = if i % 4 == 3 {
            String::from_utf8_lossy(&g.bytes(200)).into_owned()
        } else {
            let seed = *g.pick(&seeds);
            g.mutate(seed, JSON_TOKENS)
        };
        let lineno = 1 + g.below(100_000);
        match scope_deck::ui::headless::parse_line(&line, lineno) {
            None => {
                let t = line.trim();
                assert!(
                    t.is_empty() || t.starts_with('#'),
                    "dropped silently: {line:?}"
                );
            }
            Some(Msg::BadInput(why)) => {
                assert!(why.contains(&format!("line {lineno}")), "{why}");
                assert!(
                    why.len() < 1000,
                    "message grows with the input: {}",
                    why.len()
                );
            }
            Some(_) => {}
        }
    }
}

/// Deck socket lines (docs/service.md): never a panic, errors bounded, and no mutation of the
/// deck's own learn steps (`learn_done`, `learn_control`: messages, not actions) ever parses as
/// an action of that name.
#[test]
fn socket_lines_never_panic_and_never_pass_internal_actions() {
    use scope_deck::service::protocol::{ClientLine, client_line};
    let seeds = [
        r#"{"cmd":"get_state"}"#,
        r#"{"cmd":"attach"}"#,
        r#"{"action":"learn_done","ok":true,"message":"bound"}"#,
        r#"{"action":"learn_control","control":{"device":"pad","channel":1,"kind":"cc","number":7}}"#,
        r#"{"action":"select_theme","index":3}"#,
    ];
    let mut g = Gen::new(6);
    for i in 0..cases() {
        let line = if i % 4 == 3 {
            String::from_utf8_lossy(&g.bytes(200)).into_owned()
        } else {
            let seed = *g.pick(&seeds);
            g.mutate(seed, JSON_TOKENS)
        };
        match client_line(&line) {
            Ok(Some(ClientLine::Action(a))) => {
                assert!(!a.name().starts_with("learn_"), "{line:?} passed as {a:?}")
            }
            Ok(_) => {}
            Err(why) => assert!(why.len() < 1000, "message grows: {}", why.len()),
        }
    }
}

#[test]
fn midi_bytes_never_panic_and_give_valid_messages() {
    use scope_deck::controls::midi::parse::{MidiMsg, MidiParser};
    let mut g = Gen::new(6);
    for _ in 0..cases() {
        let bytes = g.bytes(512);
        let mut p = MidiParser::new();
        for m in p.parse_all(&bytes) {
            let ok = match m {
                MidiMsg::NoteOn {
                    channel,
                    note,
                    velocity,
                } => channel < 16 && note < 128 && (1..128).contains(&velocity),
                MidiMsg::NoteOff {
                    channel,
                    note,
                    velocity,
                } => channel < 16 && note < 128 && velocity < 128,
                MidiMsg::Cc { channel, cc, value } => channel < 16 && cc < 128 && value < 128,
                MidiMsg::Program { channel, program } => channel < 16 && program < 128,
                MidiMsg::PitchBend { channel, value } => channel < 16 && value < 16384,
                MidiMsg::Aftertouch { channel } => channel < 16,
                _ => true,
            };
            assert!(ok, "{m:?} from {bytes:02x?}");
        }
    }
}

/// Random JSON values, nested a few levels, with the keys the server parsers look for.
fn json_value(g: &mut Gen, depth: usize) -> Value {
    const KEYS: &[&str] = &[
        "type",
        "error_message",
        "pipelines",
        "config_schema",
        "properties",
        "default",
        "minimum",
        "maximum",
        "ndi",
        "spout",
        "syphon",
        "available",
        "status",
        "loaded",
        "pipeline_id",
        "message",
        "output_sinks",
        "enum",
        "items",
    ];
    match if depth == 0 { g.below(4) } else { g.below(6) } {
        0 => Value::Null,
        1 => Value::Bool(g.below(2) == 0),
        2 => {
            let f = f64::from_bits(g.next());
            serde_json::Number::from_f64(f).map_or(Value::from(g.next() as i64), Value::Number)
        }
        3 => Value::String(g.pick(KEYS).to_string()),
        4 => Value::Array((0..g.below(4)).map(|_| json_value(g, depth - 1)).collect()),
        _ => Value::Object(
            (0..g.below(5))
                .map(|_| (g.pick(KEYS).to_string(), json_value(g, depth - 1)))
                .collect(),
        ),
    }
}

#[test]
fn server_json_messages_and_bodies_never_panic() {
    let mut g = Gen::new(7);
    let seeds = [
        r#"{"type":"stream_stopped","error_message":"CUDA out of memory"}"#,
        r#"{"type":"pipeline_status","status":"loaded"}"#,
    ];
    for i in 0..cases() {
        // Data-channel text: mutated messages and random bytes.
        let text = if i % 3 == 0 {
            String::from_utf8_lossy(&g.bytes(200)).into_owned()
        } else {
            let seed = *g.pick(&seeds);
            g.mutate(seed, JSON_TOKENS)
        };
        if let Err(e) = scope_deck::transport::protocol::parse_server_message(&text) {
            assert!(
                e.start.chars().count() <= 80,
                "error echoes the whole input"
            );
        }
        // HTTP bodies as parsed JSON: the schema, the hardware info, the hosted API health.
        let v = json_value(&mut g, 4);
        if let Ok(text) = serde_json::to_string(&v) {
            let _ = scope_deck::transport::protocol::parse_server_message(&text);
        }
        let _ = scope_deck::transport::schema::specs_from_schemas(&v, &["longlive".to_string()]);
        let _ = scope_deck::video::scope_api::HardwareInfo::from_json(&v);
        let _ = scope_deck::transport::daydream::api::parse_health(&v);
    }
}

#[test]
fn wav_files_never_panic_and_memory_stays_bounded() {
    use scope_deck::audio::source::wav::{WavReader, write_wav};
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wav");
    write_wav(
        &good,
        48_000,
        &[0.5, -0.5, 0.25, f32::NAN, f32::INFINITY, 0.0],
    )
    .unwrap();
    let valid = std::fs::read(&good).unwrap();
    let mut g = Gen::new(8);
    let path = dir.path().join("gen.wav");
    for i in 0..cases() {
        let mut b = valid.clone();
        if i % 4 == 3 {
            b = g.bytes(256);
        } else {
            for _ in 0..1 + g.below(4) {
                match g.below(3) {
                    0 if !b.is_empty() => {
                        let at = g.below(b.len());
                        b[at] = g.next() as u8;
                    }
                    1 => b.truncate(g.below(b.len() + 1)),
                    _ => {
                        // Header fields blown up: sizes and counts near their maximum.
                        let at = g.below(b.len().saturating_sub(4).max(1));
                        if at + 4 <= b.len() {
                            b[at..at + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
                        }
                    }
                }
            }
        }
        std::fs::write(&path, &b).unwrap();
        if let Ok(mut r) = WavReader::open(&path) {
            let mut out = Vec::new();
            let mut total = 0usize;
            // The file is at most a few hundred bytes: the reader must not make up more.
            while let Ok(n) = r.read(&mut out, 4096) {
                if n == 0 {
                    break;
                }
                total += n;
                assert!(total <= b.len(), "{total} frames from {} bytes", b.len());
                assert!(
                    out.capacity() < 1 << 20,
                    "buffer grew to {}",
                    out.capacity()
                );
                out.clear();
            }
        }
    }
}

#[test]
fn sample_data_with_nan_and_inf_keeps_every_frame_finite() {
    use scope_deck::audio::config::AudioConfig;
    use scope_deck::audio::dsp::analyzer::Analyzer;
    let mut g = Gen::new(9);
    let cfg = AudioConfig::default();
    let mut a = Analyzer::new(cfg.analyzer_settings(48_000));
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        1e-40,
    ];
    let mut frames = 0usize;
    for _ in 0..cases() {
        let block: Vec<f32> = (0..g.below(2048))
            .map(|_| match g.below(8) {
                0 => *g.pick(&special),
                1 => f32::from_bits(g.next() as u32),
                _ => (g.next() as i32 as f32) / i32::MAX as f32,
            })
            .collect();
        a.push(
            &block,
            &mut |f| {
                frames += 1;
                for v in [f.rms_db, f.peak_db, f.energy, f.brightness, f.flux, f.bpm] {
                    assert!(v.is_finite(), "non-finite feature in {f:?}");
                }
                assert!(f.spectrum.iter().all(|v| v.is_finite()), "{f:?}");
            },
            &mut |_| {},
        );
    }
    assert!(frames > 0, "no frame analysed");
}
