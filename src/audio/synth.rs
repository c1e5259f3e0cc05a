//! A small deterministic drum machine + bass synth with an exact record of what it played.
//! It is both the built-in demo track (so `scope-deck --dry-run` has music on a machine with no
//! sound card and no files) and the generator of the evaluation set's ground truth. Pure.

/// Voices, as bits of a step mask.
pub(crate) mod voice {
    /// Metronome click.
    pub(crate) const CLICK: u8 = 1;
    /// Kick drum.
    pub(crate) const KICK: u8 = 2;
    /// Snare.
    pub(crate) const SNARE: u8 = 4;
    /// Closed hi-hat.
    pub(crate) const HAT: u8 = 8;
    /// Bass note.
    pub(crate) const BASS: u8 = 16;
}

/// Tempo as a function of musical position.
#[derive(Debug, Clone, PartialEq)]
pub enum TempoMap {
    /// One tempo throughout.
    Const(f64),
    /// `(from_beat, bpm)` steps, sorted by beat; the first applies from beat 0.
    Steps(Vec<(f64, f64)>),
    /// Linear ramp from `from` to `to` BPM between two beats (constant outside).
    Ramp {
        /// BPM before and at `start`.
        from: f64,
        /// BPM at and after `end`.
        to: f64,
        /// First beat of the ramp.
        start: f64,
        /// Last beat of the ramp.
        end: f64,
    },
}

impl TempoMap {
    /// Tempo at a musical position (beats from the start).
    pub(crate) fn bpm_at(&self, beat: f64) -> f64 {
        match self {
            TempoMap::Const(b) => *b,
            TempoMap::Steps(steps) => steps
                .iter()
                .rev()
                .find(|(b, _)| beat >= *b)
                .or(steps.first())
                .map(|s| s.1)
                .unwrap_or(120.0),
            TempoMap::Ramp {
                from,
                to,
                start,
                end,
            } => {
                if beat <= *start {
                    *from
                } else if beat >= *end {
                    *to
                } else {
                    from + (to - from) * (beat - start) / (end - start)
                }
            }
        }
    }
}

/// Which voices play on each 16th-note step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A click on every beat.
    Clicks,
    /// Kick on 1 and 3, snare on 2 and 4, eighth-note hats.
    Drums,
    /// A 24-bar song: intro (kick + hats), verse (drums + bass), breakdown (hats + bass), chorus
    /// (drums, 16th hats, bass). The demo track.
    Song,
}

const BASS_NOTES: [f32; 8] = [55.0, 55.0, 65.41, 49.0, 55.0, 73.42, 65.41, 49.0];

impl Pattern {
    /// Voices on step `step` (16ths from the start) and the bass frequency if a note starts.
    pub(crate) fn step(self, step: u64) -> u8 {
        use voice::*;
        let in_bar = step % 16;
        let bar = step / 16;
        let kick = if in_bar % 8 == 0 { KICK } else { 0 };
        let snare = if in_bar == 4 || in_bar == 12 {
            SNARE
        } else {
            0
        };
        let hat8 = if in_bar % 2 == 0 { HAT } else { 0 };
        let bass = if matches!(in_bar, 0 | 3 | 6 | 10) {
            BASS
        } else {
            0
        };
        match self {
            Pattern::Clicks => {
                if in_bar % 4 == 0 {
                    CLICK
                } else {
                    0
                }
            }
            Pattern::Drums => kick | snare | hat8,
            Pattern::Song => match bar % 24 {
                0..=3 => kick | hat8,
                4..=11 => kick | snare | hat8 | bass,
                12..=15 => hat8 | bass,
                _ => kick | snare | HAT | bass,
            },
        }
    }
}

/// A streaming sequencer + synth. Call [`Sequencer::fill`] repeatedly.
#[derive(Debug, Clone)]
pub struct Sequencer {
    sr: f64,
    tempo: TempoMap,
    pattern: Pattern,
    noise_amp: f32,
    gain: f32,
    n: u64,
    beat: f64,
    last_step: Option<u64>,
    rng: u64,
    // voice states: time since trigger in samples (u32::MAX = idle), phases
    click_t: u32,
    kick_t: u32,
    kick_ph: f32,
    snare_t: u32,
    hat_t: u32,
    hat_prev: f32,
    bass_t: u32,
    bass_ph: f32,
    bass_f: f32,
    bass_lp: f32,
    /// Step triggers recorded as (time s, mask) when recording is on.
    record: bool,
    /// Onset times played (seconds).
    pub(crate) onsets: Vec<f64>,
    /// Beat times played (seconds).
    pub(crate) beats: Vec<f64>,
}

impl Sequencer {
    /// A sequencer at `sample_rate` playing `pattern` under `tempo`, with white noise of RMS
    /// `noise_amp` added. `record` keeps the ground truth in `onsets`/`beats`.
    pub fn new(
        sample_rate: u32,
        tempo: TempoMap,
        pattern: Pattern,
        noise_amp: f32,
        record: bool,
    ) -> Self {
        Sequencer {
            sr: f64::from(sample_rate),
            tempo,
            pattern,
            noise_amp,
            gain: 0.5,
            n: 0,
            beat: 0.0,
            last_step: None,
            rng: 0x9E37_79B9_7F4A_7C15,
            click_t: u32::MAX,
            kick_t: u32::MAX,
            kick_ph: 0.0,
            snare_t: u32::MAX,
            hat_t: u32::MAX,
            hat_prev: 0.0,
            bass_t: u32::MAX,
            bass_ph: 0.0,
            bass_f: 55.0,
            bass_lp: 0.0,
            record,
            onsets: Vec::new(),
            beats: Vec::new(),
        }
    }

    /// The built-in demo: the [`Pattern::Song`] at 120 BPM for 16 bars then 128 BPM for 8,
    /// looping.
    pub fn demo(sample_rate: u32) -> Self {
        let mut steps = Vec::new();
        for cycle in 0..200u32 {
            let b = f64::from(cycle) * 96.0;
            steps.push((b, 120.0));
            steps.push((b + 64.0, 128.0));
        }
        Sequencer::new(
            sample_rate,
            TempoMap::Steps(steps),
            Pattern::Song,
            0.0,
            false,
        )
    }

    /// Sets the output gain (default 0.5).
    pub(crate) fn with_gain(mut self, gain: f32) -> Self {
        self.gain = gain;
        self
    }

    fn noise(&mut self) -> f32 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let v = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Writes the next `out.len()` mono samples.
    pub(crate) fn fill(&mut self, out: &mut [f32]) {
        use voice::*;
        let sr = self.sr as f32;
        let two_pi = 2.0 * std::f32::consts::PI;
        for o in out.iter_mut() {
            let step = (self.beat * 4.0 + 1e-9).floor() as u64;
            if self.last_step != Some(step) {
                self.last_step = Some(step);
                let mask = self.pattern.step(step);
                let t = self.n as f64 / self.sr;
                if self.record {
                    if mask != 0 {
                        self.onsets.push(t);
                    }
                    if step % 4 == 0 {
                        self.beats.push(t);
                    }
                }
                if mask & CLICK != 0 {
                    self.click_t = 0;
                }
                if mask & KICK != 0 {
                    self.kick_t = 0;
                    self.kick_ph = 0.0;
                }
                if mask & SNARE != 0 {
                    self.snare_t = 0;
                }
                if mask & HAT != 0 {
                    self.hat_t = 0;
                }
                if mask & BASS != 0 {
                    self.bass_t = 0;
                    self.bass_f = BASS_NOTES[((step / 16) % 8) as usize]
                        * if step % 16 == 6 { 2.0 } else { 1.0 };
                }
            }
            // Every voice decays below -60 dB before it is cut, so cuts never click.
            let mut s = 0.0f32;
            if self.click_t < 2400 {
                let t = self.click_t as f32 / sr;
                s += 0.9 * (-t / 0.004).exp() * (two_pi * 1800.0 * t).sin();
                self.click_t += 1;
            }
            if self.kick_t < 48_000 {
                let t = self.kick_t as f32 / sr;
                let f = 48.0 + 110.0 * (-t / 0.035).exp();
                self.kick_ph += two_pi * f / sr;
                s += 0.9 * (-t / 0.14).exp() * self.kick_ph.sin();
                self.kick_t += 1;
            }
            if self.snare_t < 19_200 {
                let t = self.snare_t as f32 / sr;
                let nz = self.noise();
                s += 0.45 * (-t / 0.06).exp() * nz
                    + 0.3 * (-t / 0.04).exp() * (two_pi * 190.0 * t).sin();
                self.snare_t += 1;
            }
            if self.hat_t < 4800 {
                let t = self.hat_t as f32 / sr;
                let nz = self.noise();
                let hp = nz - self.hat_prev;
                self.hat_prev = nz;
                s += 0.18 * (-t / 0.018).exp() * hp;
                self.hat_t += 1;
            }
            if self.bass_t < 48_000 {
                let t = self.bass_t as f32 / sr;
                self.bass_ph = (self.bass_ph + self.bass_f / sr).fract();
                let saw = 2.0 * self.bass_ph - 1.0;
                self.bass_lp += 0.08 * (saw - self.bass_lp);
                let env = (t / 0.002).min(1.0) * (-t / 0.14).exp();
                s += 0.5 * env * self.bass_lp;
                self.bass_t += 1;
            }
            if self.noise_amp > 0.0 {
                // Uniform noise in [-1, 1] has RMS 1/√3.
                s += self.noise() * self.noise_amp * 3f32.sqrt() / self.gain;
            }
            *o = (s * self.gain).clamp(-1.0, 1.0);
            self.n += 1;
            self.beat += self.tempo.bpm_at(self.beat) / 60.0 / self.sr;
        }
    }

    /// Renders `secs` seconds.
    pub fn render(&mut self, secs: f64) -> Vec<f32> {
        let mut v = vec![0.0; (secs * self.sr) as usize];
        self.fill(&mut v);
        v
    }

    /// The tempo at the current position.
    pub(crate) fn bpm_now(&self) -> f64 {
        self.tempo.bpm_at(self.beat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_track_truth_is_exact() {
        let mut s = Sequencer::new(48_000, TempoMap::Const(120.0), Pattern::Clicks, 0.0, true);
        let x = s.render(4.0);
        assert_eq!(s.beats.len(), 8);
        assert_eq!(s.onsets, s.beats);
        for (i, b) in s.beats.iter().enumerate() {
            assert!((b - 0.5 * i as f64).abs() < 1.0 / 48_000.0, "{b}");
        }
        // The click is audible exactly there.
        assert!(x[24_000..24_100].iter().any(|v| v.abs() > 0.1));
        assert!(x[23_000..24_000].iter().all(|v| v.abs() < 1e-3));
    }

    #[test]
    fn tempo_step_and_ramp() {
        let m = TempoMap::Steps(vec![(0.0, 100.0), (8.0, 140.0)]);
        assert_eq!(m.bpm_at(7.9), 100.0);
        assert_eq!(m.bpm_at(8.0), 140.0);
        let r = TempoMap::Ramp {
            from: 100.0,
            to: 120.0,
            start: 4.0,
            end: 8.0,
        };
        assert_eq!(r.bpm_at(6.0), 110.0);
        assert_eq!(r.bpm_at(9.0), 120.0);
    }

    #[test]
    fn demo_changes_tempo_and_is_not_silent() {
        let mut d = Sequencer::demo(48_000);
        let x = d.render(1.0);
        assert!(x.iter().any(|v| v.abs() > 0.2));
        assert_eq!(d.bpm_now(), 120.0);
    }
}
