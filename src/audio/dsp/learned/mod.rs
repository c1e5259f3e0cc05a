//! The learned beat and downbeat tracker (issue 23; contract in docs/beat-model.md): the 100 fps
//! front end, a small causal GRU network compiled in from `assets/beat/model.safetensors`, and an
//! online bar-pointer decoder. Same role as [`crate::audio::dsp::beat::BeatTracker`]: one call per
//! analyser hop yields a [`BeatState`] and the beats due before the end of the next hop, and it
//! obeys the same tempo commands. Allocation-free after construction.

pub mod decoder;
pub mod features;
pub mod gru;
mod states;

use crate::audio::dsp::beat::BeatState;
use crate::audio::features::{AudioEvent, TempoSource};
use crate::audio::tempo::TempoCmd;

use decoder::Decoder;
use features::{FPS, Features};
use gru::{Gru, ModelError};

const TAPS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Detected,
    /// Tap or nudge: tempo held, phase follows the music while it has a beat.
    Manual {
        bpm: f64,
    },
    /// External clock: tempo dictated.
    External {
        bpm: f64,
        source: TempoSource,
    },
}

/// Streaming learned tracker.
pub struct LearnedTracker {
    fe: Features,
    net: Gru,
    dec: Decoder,
    hop: f64,
    mode: Mode,
    count: u64,
    taps: [f64; TAPS],
    ntaps: usize,
    disagree_since: Option<f64>,
    last: [f32; 3],
    loud: LoudGate,
}

/// Tells "the music goes on without drums" from "the music stopped": a hop is *loud* when its
/// short-term level is within [`LoudGate::DROP_DB`] of a slowly falling peak. The decoder lets
/// beats coast only while loud hops keep coming (within a period): a drum break keeps its
/// pads, bass or hats; a stop into silence or a fading tail does not.
#[derive(Debug, Clone, Copy)]
struct LoudGate {
    /// Short-term mean square.
    ms: f32,
    /// Peak of the short-term level, dB, falling [`LoudGate::FALL_DB_PER_S`].
    peak_db: f32,
}

impl LoudGate {
    const SILENCE_DB: f32 = -60.0;
    const DROP_DB: f32 = 12.0;
    const FALL_DB_PER_S: f32 = 1.0;
    const TAU_S: f32 = 0.02;

    /// Folds one hop in; returns whether it is loud.
    fn push(&mut self, samples: &[f32], hop_s: f32) -> bool {
        if samples.is_empty() {
            return false;
        }
        let ms = samples
            .iter()
            .map(|&x| {
                let x = features::clean(x);
                x * x
            })
            .sum::<f32>()
            / samples.len() as f32;
        let a = (hop_s / Self::TAU_S).min(1.0);
        self.ms += a * (ms - self.ms);
        let db = 10.0 * self.ms.max(1e-12).log10();
        self.peak_db = (self.peak_db - Self::FALL_DB_PER_S * hop_s).max(db);
        db > Self::SILENCE_DB && db > self.peak_db - Self::DROP_DB
    }
}

impl LearnedTracker {
    /// A tracker for `sample_rate` fed every `hop_secs` with the compiled-in model (or the one
    /// `analyze --beat-model` put in its place: [`gru::override_model`]).
    pub fn new(sample_rate: f64, hop_secs: f64) -> Result<Self, ModelError> {
        Self::with_model(sample_rate, hop_secs, gru::model())
    }

    /// As [`Self::new`] with another weights file.
    pub fn with_model(sample_rate: f64, hop_secs: f64, model: &[u8]) -> Result<Self, ModelError> {
        let net = Gru::from_bytes(model)?;
        let offset = safetensors::SafeTensors::read_metadata(model)
            .ok()
            .and_then(|(_, m)| {
                m.metadata()
                    .as_ref()?
                    .get("label_offset_frames")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        Ok(LearnedTracker {
            fe: Features::new(sample_rate),
            net,
            dec: Decoder::new(offset),
            hop: hop_secs,
            mode: Mode::Detected,
            count: 0,
            taps: [0.0; TAPS],
            ntaps: 0,
            disagree_since: None,
            last: [1.0, 0.0, 0.0],
            loud: LoudGate {
                ms: 0.0,
                peak_db: -120.0,
            },
        })
    }

    /// The model's version string.
    pub fn model_version(&self) -> &str {
        self.net.version()
    }

    /// The tempo the music has (0 when it has no beat), regardless of tap or clock.
    pub fn detected_bpm(&self) -> f64 {
        self.dec.detected_bpm()
    }

    /// The analyser's onset detector found an onset at stream time `t` (gated or not).
    pub fn note_onset(&mut self, t: f64) {
        self.dec.note_onset(t);
    }

    /// Whether the input sounds like music: the DSP onset path passes its onsets on only then.
    pub fn music(&self, now: f64) -> bool {
        self.dec.music(now)
    }

    /// The last network output `[none, beat, downbeat]` (diagnostics).
    pub fn activation(&self) -> [f32; 3] {
        self.last
    }

    fn source(&self) -> TempoSource {
        match self.mode {
            Mode::Detected => TempoSource::Detected,
            Mode::Manual { .. } => TempoSource::Tap,
            Mode::External { source, .. } => source,
        }
    }

    fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.dec.fix_period(match mode {
            Mode::Detected => None,
            Mode::Manual { bpm } | Mode::External { bpm, .. } => Some(60.0 / bpm),
        });
    }

    /// Obeys a tempo command arriving at stream time `now`.
    pub fn command(&mut self, cmd: TempoCmd, now: f64) {
        match cmd {
            TempoCmd::Tap { at_secs } => {
                if self.ntaps > 0 {
                    let gap = at_secs - self.taps[(self.ntaps - 1) % TAPS];
                    if !(0.2..=2.0).contains(&gap) {
                        self.ntaps = 0;
                    }
                }
                self.taps[self.ntaps % TAPS] = at_secs;
                self.ntaps += 1;
                let n = self.ntaps.min(TAPS);
                if n >= 2 {
                    let mut iv = [0.0f64; TAPS];
                    let first = self.ntaps - n;
                    for i in 1..n {
                        iv[i - 1] =
                            self.taps[(first + i) % TAPS] - self.taps[(first + i - 1) % TAPS];
                    }
                    let iv = &mut iv[..n - 1];
                    iv.sort_by(f64::total_cmp);
                    let med = iv[iv.len() / 2];
                    if med > 0.0 {
                        self.set_mode(Mode::Manual {
                            bpm: (60.0 / med).clamp(20.0, 400.0),
                        });
                        self.disagree_since = None;
                    }
                }
                // The tap is a beat.
                self.dec.anchor_beat(now);
            }
            TempoCmd::Nudge { bpm } => {
                let cur = self.dec.fixed_period().map_or_else(
                    || {
                        let d = self.dec.detected_bpm();
                        if d > 0.0 { d } else { 120.0 }
                    },
                    |p| 60.0 / p,
                );
                let new = (cur + bpm).clamp(20.0, 400.0);
                match self.mode {
                    Mode::External { source, .. } => {
                        self.set_mode(Mode::External { bpm: new, source })
                    }
                    _ => self.set_mode(Mode::Manual { bpm: new }),
                }
                self.disagree_since = None;
            }
            TempoCmd::Redownbeat => self.dec.redownbeat(now),
            TempoCmd::External {
                bpm,
                beat_phase,
                source,
            } => {
                if bpm > 0.0 && bpm.is_finite() {
                    let bpm = bpm.clamp(20.0, 400.0);
                    self.set_mode(Mode::External { bpm, source });
                    if let Some(ph) = beat_phase {
                        self.dec.anchor_beat(now - ph.rem_euclid(1.0) * 60.0 / bpm);
                    }
                }
            }
            TempoCmd::ExternalStopped => {
                if matches!(self.mode, Mode::External { .. }) {
                    self.set_mode(Mode::Detected);
                }
            }
        }
    }

    /// Feeds one analyser hop of samples ending at stream time `now`; beats due before the end of
    /// the next hop go to `emit`.
    pub fn process(
        &mut self,
        now: f64,
        samples: &[f32],
        emit: &mut impl FnMut(AudioEvent),
    ) -> BeatState {
        if self.loud.push(samples, self.hop as f32) {
            self.dec.note_loud(now);
        }
        let (net, dec, last) = (&mut self.net, &mut self.dec, &mut self.last);
        self.fe.push(samples, &mut |k, raw| {
            let p = net.step(raw);
            *last = p;
            dec.observe(
                (k + 1) as f64 / FPS,
                p,
                features::low_onset(raw),
                features::onset(raw),
            );
        });
        // A held tempo gives way when the music confidently disagrees for 8 s.
        if let Mode::Manual { bpm } = self.mode {
            let det = self.dec.detected_bpm();
            if det > 0.0 && ((det - bpm) / bpm).abs() > 0.06 {
                let since = *self.disagree_since.get_or_insert(now);
                if now - since > 8.0 {
                    self.set_mode(Mode::Detected);
                    self.disagree_since = None;
                }
            } else {
                self.disagree_since = None;
            }
        }
        let free_run = !matches!(self.mode, Mode::Detected);
        let count = &mut self.count;
        let r = self.dec.poll(now, self.hop, free_run, &mut |b| {
            *count += 1;
            emit(AudioEvent::Beat {
                time: b.time,
                count: *count,
                in_bar: b.in_bar,
                bpm: b.bpm as f32,
            });
        });
        BeatState {
            bpm: r.bpm as f32,
            phase: r.phase as f32,
            bar_position: r.bar_position as f32,
            confidence: r.confidence,
            source: self.source(),
        }
    }
}

#[cfg(test)]
mod tests;
