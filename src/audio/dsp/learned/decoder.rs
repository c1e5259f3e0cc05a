//! Online bar-pointer decoder (docs/beat-model.md, "Decoder"). A hidden Markov model over
//! (bar length 3 or 4, beat in the bar, beat interval in frames, position in the beat) is filtered
//! forward one network frame at a time; the tempo may change only where a beat starts
//! (`exp(-λ |i'/i - 1|)`, after Krebs, Böck & Widmer 2015). The network's beat / downbeat
//! probabilities are the observations: the first frame of a beat is "beat" (or "downbeat" on
//! beat 1), the rest "no beat".
//!
//! The most likely state steers one *output oscillator* (bar position in beats, fractional period)
//! that every reading comes from: BPM, phase, bar position and the predicted beats, so they never
//! disagree and the BPM is not quantised to whole frames. Beats are emitted when the oscillator
//! will cross a beat before the end of the caller's next hop, only while the network keeps
//! firing on the predicted beats (the confidence), has fired within 1.5 periods and confirmed a
//! predicted beat within 1.3 periods (so beats stop one beat after the music does); while the
//! input keeps sounding they coast through a drum break on the held tempo (up to 32 beats).
//! Beats already sent move with a bar relabel, and two beats are never sent closer than half a
//! period. A *beatness* (the running log likelihood ratio of this model against one without
//! beats) keeps noise, which makes the network fire at random times, from holding a beat;
//! coasting also needs onsets, so a ringing tail after the music stops gets no beat. A *tempo
//! evidence* (the activation on the predicted beats against between them, over a few beats) keeps
//! music without drums going where the beatness alone stopped it, and says (with the beatness)
//! whether the input sounds like music at all, which gates the analyser's DSP onsets.
//! Allocation-free after construction. The constants were tuned on the generated *valid* split
//! (and, for the beatness gate and the stop, the `validx` tuning split) only; docs/performance.md
//! reports the held-out and final splits separately.

use super::features::FPS;
use super::states::States;

/// Shortest beat interval in frames (200 BPM at 100 fps).
pub const I_MIN: usize = 30;
/// Longest beat interval in frames (60 BPM).
pub const I_MAX: usize = 100;
const NI: usize = I_MAX - I_MIN + 1;
/// Bar lengths modelled; rows 0..3 are the 3-beat bar's beats, rows 3..7 the 4-beat bar's.
const METERS: [usize; 2] = [3, 4];
const ROWS: usize = 7;
/// Tempo-change sharpness at a beat boundary (valid split: 30 → 100 raised beat F 0.913 →
/// 0.925, tempo-change files 0.903 → 0.905; one file of 66 lost its tempo).
const TRANSITION_LAMBDA: f64 = 100.0;
/// Smallest observation probability.
const OBS_FLOOR: f32 = 0.01;
/// Weight of "a beat is here" against "no beat here" (madmom's observation lambda plays the
/// same role). Unweighted, a hypothesis that skips every other kick pays little for it and
/// the filter sat at half tempo for seconds; weighted, it locks on the second kick (valid split:
/// median time to four right beats 4.2 s → 0.43 s, tempo right on 53 → 66 of 66 files).
const OBS_GAIN: f32 = 16.0;
/// A filter period this far (relative) from the oscillator's counts as a tempo disagreement even
/// when the phases happen to line up (half and double tempo share every other beat).
const TEMPO_OFF: f64 = 0.12;
/// How much a beat and a downbeat state see of each other's activation, and the weight of the
/// downbeat activation itself: the network's downbeat class is the less sure one, so a
/// downbeat state leans on "a beat is here" too and the bar phase comes from several bars of
/// evidence (valid downbeat F 0.700 → 0.743 with the tempo change above).
const LEAK: f32 = 0.3;
const DOWN_GAIN: f32 = 0.5;
/// Prior weight of a 3-beat-bar state against a 4-beat one: with no evidence yet the filter
/// took the music's first onset as a 3/4 downbeat and sent a wrong downbeat in the first bar of
/// most files (valid downbeat F 0.743 → 0.758).
const PRIOR_3: f32 = 0.2;
/// Beats of lasting disagreement before the bar alone (same tempo and meter) is relabelled:
/// kick-every-beat music keeps beat 1 and beat 3 close, and flipping between them cost more
/// than waiting (valid downbeat F 0.758 → 0.767). Round 10 lowered it from 4 to 1 together with
/// `RELABEL_RATIO`, which now does the waiting where the bar is unsure.
const BAR_PATIENCE: f64 = 1.0;
/// The patience grows by this many beats per beat the bar has held, up to `BAR_PATIENCE_MAX`: a
/// bar that has held for bars is likelier right than a few seconds of the network's downbeat
/// class saying otherwise (with model 12-07c the demo song's verse moved a right bar for three
/// seconds, and a cue's bar-quantised switch with it; valid: relabels 70 → 63, downbeat F
/// 0.867 → 0.870; validx 0.676 → 0.670).
const BAR_PATIENCE_GROWTH: f64 = 0.25;
const BAR_PATIENCE_MAX: f64 = 8.0;
/// A bar relabel also needs the filter to be this many times surer of its own bar than of the
/// one shown (the two rows' mass at the same point of the beat, over all tempi); until then the
/// disagreement does not count. In the demo's intro (equal kicks on 1 and 3) model 12-07f's
/// filter leant 2:1 towards beat 3 from its first, half-heard kick and relabelled a right bar at
/// 4 s and back at 13 s. With model 12-07f (tuned on valid and validx; ratio 1 = no gate,
/// patience 4 → ratio 3, patience 1): downbeat F valid 0.876 → 0.874, validx 0.753 → 0.788,
/// beat F 0.956 → 0.954 and 0.918 → 0.917. (12-07c loses with it: validx 0.677 → 0.674.)
const RELABEL_RATIO: f32 = 3.0;
/// ... and the last bar alone must have moved those odds this many times towards its bar. The
/// odds the filter accumulates never forget: small, steady margins add up to any ratio. In the
/// demo's intro (kicks on 1 and 3) model 12-07l's downbeat class reads a little higher on the
/// third beat's kick, the odds reached 3:1 by 7.5 s and the bar moved, to move back at 12 s
/// when the verse came in; no bar of that intro gained more than 2.1:1 and most under 1.9:1.
/// Tuned with 12-07l on valid, validx and validk (downbeat F; 1 = no gate): 0.888 → 0.899,
/// 0.809 → 0.800, 0.836 → 0.811 (6 files changed: 4 better, 2 worse); beat F unchanged. A
/// higher `RELABEL_RATIO` instead (6, 12, 20) also kept the demo's bar but cost more (validk
/// 0.790 at each).
const RELABEL_RECENT: f32 = 1.5;
/// Frames of row-mass history: one 4-beat bar at the slowest tempo, and the frame before it.
const HIST: usize = 4 * I_MAX + 2;
/// A beat sent within this many periods counts as emitting for the patience above: the
/// confidence flickers off between the kicks of a kick-on-1-and-3 intro, and following the
/// filter at once in every such gap relabelled the demo's bar every two beats (`2 3 2 3`).
const EMITTING: f64 = 2.0;
/// Probability per bar of switching between a 3- and a 4-beat bar.
const METER_SWITCH: f32 = 1e-4;
/// Uniform mass mixed in per frame so the filter can always re-lock.
const FLOOR_MIX: f32 = 1e-6;
/// Confidence needed to start emitting beats, and below which they stop.
const CONF_ON: f32 = 0.4;
const CONF_OFF: f32 = 0.15;
/// A beat activation at least this high counts as "the music still has a beat".
const ACT_ALIVE: f32 = 0.2;
/// A predicted beat counts as confirmed when the network fires at least this high in its window.
const HIT: f32 = 0.5;
/// Beats stop when no predicted beat was confirmed for this many periods: the one after the
/// music's last beat is still sent, the next is not (the network keeps murmuring ≤ 0.5 for a few
/// beats after the music stops, which the looser "alive" rule alone took for music).
const HIT_GAP: f64 = 1.3;
/// Half-width of the window around a predicted beat where its activation is looked for, s.
const BEAT_WINDOW: f64 = 0.05;
/// While the input still sounds (see [`Decoder::note_loud`]) beats coast on the held tempo for
/// this many periods after the last confirmed one: a breakdown where the drums drop out keeps its
/// beat, as a DJ's grid does; music that stops into silence still stops after [`HIT_GAP`].
const COAST: f64 = 32.0;
/// Two emitted beats are at least this many periods apart: a phase correction that lands the
/// next beat right after the last one skips it instead of sending the same beat twice.
const MIN_SPACING: f64 = 0.5;
/// Off-beat rejection: a beat or downbeat state's observation is multiplied by up to
/// `1 + KICK_GAIN` where the input has a low-band onset (a kick) well above its recent mean.
/// Off-beat hats and claps fire the network as much as a quiet kick does; only the kick has
/// energy under ~60 Hz, so of two phases half a beat apart, the one on the kicks wins.
const KICK_GAIN: f32 = 1.0;
/// Low-band onset relative to its running mean below which a frame is no kick at all (noise
/// with its energy down low fluctuates up to a few times its mean), and the further rise that
/// gives the full [`KICK_GAIN`].
const KICK_FROM: f32 = 4.0;
const KICK_SAT: f32 = 4.0;
/// Floor of the low-band mean, so silence does not turn a murmur into a kick.
const LO_EPS: f32 = 0.05;
/// Running mean of the low-band onset: per-frame weight (about 3 s).
const LO_MEAN_RATE: f32 = 1.0 / 300.0;
/// Confidence gate: beats start only if the network fires on the predicted beats at least this
/// many times as hard as half a beat away from them. Loud noise makes the network murmur
/// everywhere; music puts its peaks on the beat.
const CONTRAST: f32 = 0.0;
/// Beatness (see [`Decoder::beatness`]): running mean of the per-frame log likelihood ratio of
/// the bar-pointer model against a beat-less one, over about 2 s. Loud noise makes the network
/// fire now and then but never where the model predicts a beat, so the ratio stays at or below
/// 0; music puts its activation on the predicted beats. Beats start only above `BEAT_ON` and
/// stop (coasting included) below `BEAT_OFF` (hysteresis).
const BEATNESS_RATE: f32 = 1.0 / 200.0;
const BEAT_ON: f32 = 0.01;
const BEAT_OFF: f32 = 0.03;
/// The stop rule on beatness waits this long after beats start: music's beatness is still
/// rising from 0 then (about 0.05 after 1.5 s of a clear beat), noise's has fallen back.
const BEAT_GRACE_S: f64 = 1.5;
/// Tempo evidence (round 6): per beat, the mean activation inside the predicted beats' ±50 ms
/// windows and in the middle 60 % of the beat are averaged (weight `TEV_RATE` per beat, about 4
/// beats); their ratio, `on / (off + TEV_FLOOR)`, is the *tempo evidence*. The activation on
/// music without drums is weak but lands on the beats (ratio 5-10 on validx's drumless songs,
/// 13 on house); noise and speech fire as much between the predicted beats as on them (median
/// 0.9-1.8, 90th percentile ≤ 3.7). Beats keep running while it is ≥ `TEV_OFF` even if the
/// beatness falls (the beatness stopped drumless songs), and with it ≥ `TEV_ON` they may start
/// at a confidence of `CONF_ON_WEAK` instead of [`CONF_ON`], their predicted beats confirmed at
/// `HIT_WEAK`.
const TEV_RATE: f32 = 0.25;
const TEV_FLOOR: f32 = 0.02;
const TEV_OFF: f32 = 4.0;
const TEV_ON: f32 = 6.0;
const CONF_ON_WEAK: f32 = 0.25;
/// With tempo evidence ≥ `TEV_ON`, a predicted beat also counts as confirmed at this activation
/// (instead of [`HIT`]): weak but regular peaks are the beat of music without drums.
const HIT_WEAK: f32 = 0.25;
/// Onset gate (round 6): the DSP onset path passes its onsets on only while the input sounds
/// like music -- beats running, beatness ≥ `ONSET_BEATNESS` or tempo evidence ≥ `ONSET_TEV` --,
/// for `ONSET_GRACE_S` after the input becomes loud after a second or more of quiet (so the
/// first onsets of a song are not lost before the beat is found), or when the onsets themselves
/// make a pulse (`onset::PulseCheck`, in the analyser). Speech and noise fail all of these after
/// their first two seconds.
const ONSET_BEATNESS: f32 = 0.03;
const ONSET_TEV: f32 = 5.0;
const ONSET_GRACE_S: f64 = 2.0;
/// Onset events for coasting: a frame whose all-band positive difference is this many times its
/// running mean (about 1 s) is an onset. A drum break still has notes starting; a stop into a
/// ringing or fading tail, or into noise, has none, so coasting needs *two* onset events (50 ms
/// apart or more) within [`COAST_ONSET`] periods: a last `hit` (kick, crash and chord on the
/// next downbeat, then a decay) is one onset, and with one allowed the beat coasted two periods
/// past it (validx late beats 3/22 → 2/22).
const ONSET_RATIO: f32 = 2.5;
const FLUX_RATE: f32 = 1.0 / 100.0;
const COAST_ONSET: f64 = 2.0;
/// A predicted beat counts as confirmed only if an onset (this decoder's flux onset or the
/// analyser's onset detector, whichever is later) came within this many periods before its window
/// closed: after a final `hit` the network fired on a phantom beat in the loud decay, which
/// confirmed it and sent one more beat two periods after the hit; loud noise got its beats the
/// same way. The two detectors cover each other: the flux onset misses dense double-kick metal,
/// the analyser's misses distorted guitar walls (validx: late beats 3/22 → 1/22, beats on
/// loud noise 36 → 15; valid beat F 0.938 → 0.936, validx rock_dense 0.839 → 0.805).
const HIT_ONSET: f64 = 1.0;
/// A predicted beat counts as confirmed only if the input was loud (see [`Decoder::note_loud`])
/// this recently when its window closes: music that stops dead makes the network fire on the
/// cut, which then confirmed one more beat after the end.
const HIT_LOUD_S: f64 = 0.03;
/// Settling: right after the oscillator starts (or jumps to the filter), the filter's tempo is
/// still moving (the first beats come after two or three peaks); the oscillator follows it and
/// its phase this much faster at first, the extra gain decaying over `SETTLE_S` seconds. With the
/// steady gains alone the demo song's first beats carried 131 → 124 → 124 → 120 BPM.
const SETTLE_GAIN: f64 = 0.3;
const SETTLE_S: f64 = 0.5;

fn row_of(meter_idx: usize, beat: usize) -> usize {
    if meter_idx == 0 { beat } else { 3 + beat }
}

fn meter_of_row(row: usize) -> (usize, usize) {
    if row < 3 { (0, row) } else { (1, row - 3) }
}

/// What the decoder says at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Beats per minute of the output oscillator; 0 when there is no beat.
    pub bpm: f64,
    /// Position in the beat 0..1.
    pub phase: f64,
    /// Beat in the bar plus phase.
    pub bar_position: f64,
    /// Beats per bar the model believes in.
    pub beats_per_bar: u32,
    /// 0..1; 0 when no beat.
    pub confidence: f32,
}

/// A predicted beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// Stream time it is due, seconds.
    pub time: f64,
    /// Beat in the bar, 0 = downbeat.
    pub in_bar: u32,
    /// Tempo it was predicted with.
    pub bpm: f64,
}

/// The forward filter plus the output oscillator.
pub struct Decoder {
    /// State probabilities, block `row * NI + ii` holding the `I_MIN + ii` positions of one
    /// beat of bar row `row` at interval index `ii`.
    states: States,
    /// Mass entering each block's first position this frame.
    incoming: Vec<f32>,
    /// Tempo transitions from each interval: (first target interval index, weights).
    trans: Vec<(usize, Vec<f32>)>,
    exit: [[f32; NI]; ROWS],
    block_mass: Vec<f32>,
    /// Offset of the network's activation peak after the event, frames.
    label_offset: f64,
    // Output oscillator: bar position (beats, unwrapped) `pos_ref` at time `t_ref`.
    started: bool,
    t_ref: f64,
    pos_ref: f64,
    period: f64,
    meter: usize,
    /// Tempo held by a performer or an external clock (phase still follows the music).
    fixed_period: Option<f64>,
    disagree: u32,
    /// When the bar labelling last changed (start, meter change, relabel), s.
    bar_since: f64,
    /// The filter's own period (seconds) at the last frame.
    period_h: f64,
    conf: f32,
    win_max: f32,
    in_win: bool,
    last_alive: f64,
    /// Time of the last predicted beat the network confirmed.
    last_hit: f64,
    active: bool,
    last_emit: Option<f64>,
    emitted_pos: f64,
    /// Bar offset set by a re-downbeat.
    bar_offset: i64,
    /// Last time the input was loud (the caller's level gate): beats may coast within a period.
    last_loud: f64,
    /// A predicted beat was confirmed lately (not coasting).
    confirmed: bool,
    /// Running mean of the low-band onset and the previous frame's value (off-beat rejection).
    lo_mean: f32,
    lo_prev: f32,
    /// Peak activation half a beat from the predicted beats (an average over windows, like
    /// `conf`), and its window's running maximum.
    between: f32,
    between_max: f32,
    in_between: bool,
    /// Extra follow gain while settling (1 after a start or jump, decaying).
    settle: f64,
    /// Running mean of the per-frame log likelihood ratio, beat model against no beat.
    beatness: f32,
    /// Running mean of the all-band onset strength and the last onset event's time.
    flux_mean: f32,
    last_onset: f64,
    /// When beats last started.
    active_since: f64,
    /// Beats were stopped by the beatness rule: a restart needs beatness ≥ `BEAT_OFF`, not just
    /// ≥ `BEAT_ON` (or noise would restart, run its grace period, stop, and so on).
    doubted: bool,
    /// Tempo evidence: running means (per beat) of the activation inside the predicted beats'
    /// windows and in the rest of the beat, and this beat's sums.
    tev_on: f32,
    tev_off: f32,
    on_acc: (f32, u32),
    off_acc: (f32, u32),
    /// Tuning knobs (see the constants of the same names).
    knobs: Knobs,
    /// Each row's total mass over the last `HIST` frames (ring, newest at `hist_n - 1`).
    row_hist: Vec<[f32; ROWS]>,
    hist_n: usize,
    /// Tempo evidence of the last frame (`tev_on / (tev_off + TEV_FLOOR)`).
    tev: f32,
    /// When the input last became loud after a second or more without (the onset gate's grace).
    sound_start: f64,
    /// The onset event before `last_onset` (coasting needs two within `COAST_ONSET` periods).
    prev_onset: f64,
    /// The analyser's last onset (its own detector, see [`Decoder::note_onset`]).
    last_dsp_onset: f64,
}

/// The decoder's tunable constants in one place (while tuning on valid and validx they were read
/// from `BEAT_*` environment variables; the shipped decoder uses the constants).
#[derive(Debug, Clone, Copy)]
struct Knobs {
    kick_gain: f32,
    kick_sat: f32,
    kick_from: f32,
    contrast: f32,
    obs_gain: f32,
    beat_on: f32,
    beat_off: f32,
    onset_ratio: f32,
    coast_onset: f64,
    grace_s: f64,
    hit_loud_s: f64,
    settle_gain: f64,
    settle_s: f64,
    leak: f32,
    down_gain: f32,
}

impl Knobs {
    fn get() -> Self {
        Knobs {
            kick_gain: KICK_GAIN,
            kick_sat: KICK_SAT,
            kick_from: KICK_FROM,
            contrast: CONTRAST,
            obs_gain: OBS_GAIN,
            beat_on: BEAT_ON,
            beat_off: BEAT_OFF,
            onset_ratio: ONSET_RATIO,
            coast_onset: COAST_ONSET,
            grace_s: BEAT_GRACE_S,
            hit_loud_s: HIT_LOUD_S,
            settle_gain: SETTLE_GAIN,
            settle_s: SETTLE_S,
            leak: LEAK,
            down_gain: DOWN_GAIN,
        }
    }
}

impl Decoder {
    /// Builds the state space (allocates).
    pub fn new(label_offset_frames: f64) -> Self {
        let lens: Vec<usize> = (0..ROWS * NI).map(|k| I_MIN + k % NI).collect();
        let n: usize = lens.iter().sum();
        // Prior: a state of a 3-beat bar (rows 0..3) weighs PRIOR_3 against a 4-beat one.
        let n3: usize = lens[..3 * NI].iter().sum();
        let z = PRIOR_3 * n3 as f32 + (n - n3) as f32;
        let states = States::new(&lens, |k| if k < 3 * NI { PRIOR_3 / z } else { 1.0 / z });
        let trans = (0..NI)
            .map(|from| {
                let fi = (I_MIN + from) as f64;
                let w: Vec<f64> = (0..NI)
                    .map(|to| (-TRANSITION_LAMBDA * ((I_MIN + to) as f64 / fi - 1.0).abs()).exp())
                    .collect();
                let sum: f64 = w.iter().sum();
                let first = w.iter().position(|&v| v / sum > 1e-7).unwrap_or(from);
                let last = w.iter().rposition(|&v| v / sum > 1e-7).unwrap_or(from);
                (
                    first,
                    w[first..=last].iter().map(|&v| (v / sum) as f32).collect(),
                )
            })
            .collect();
        Decoder {
            states,
            incoming: vec![0.0; ROWS * NI],
            trans,
            exit: [[0.0; NI]; ROWS],
            block_mass: vec![0.0; ROWS * NI],
            label_offset: label_offset_frames,
            started: false,
            t_ref: 0.0,
            pos_ref: 0.0,
            period: 0.5,
            meter: 4,
            fixed_period: None,
            disagree: 0,
            bar_since: 0.0,
            period_h: 0.5,
            conf: 0.0,
            win_max: 0.0,
            in_win: false,
            last_alive: f64::NEG_INFINITY,
            last_hit: f64::NEG_INFINITY,
            active: false,
            last_emit: None,
            emitted_pos: f64::NEG_INFINITY,
            bar_offset: 0,
            last_loud: f64::NEG_INFINITY,
            confirmed: false,
            lo_mean: 0.0,
            lo_prev: 0.0,
            between: 0.0,
            between_max: 0.0,
            in_between: false,
            settle: 0.0,
            beatness: 0.0,
            flux_mean: 0.0,
            last_onset: f64::NEG_INFINITY,
            active_since: 0.0,
            doubted: false,
            tev_on: 0.0,
            tev_off: 0.0,
            on_acc: (0.0, 0),
            off_acc: (0.0, 0),
            knobs: Knobs::get(),
            row_hist: vec![[0.0; ROWS]; HIST],
            hist_n: 0,
            tev: 0.0,
            sound_start: f64::NEG_INFINITY,
            prev_onset: f64::NEG_INFINITY,
            last_dsp_onset: f64::NEG_INFINITY,
        }
    }

    /// Number of hidden states.
    pub fn states(&self) -> usize {
        self.states.len()
    }

    /// Holds the tempo (tap, nudge, external clock) or releases it (`None`).
    pub fn fix_period(&mut self, period_secs: Option<f64>) {
        self.fixed_period = period_secs;
        if let Some(p) = period_secs {
            self.period = p;
        }
    }

    /// The input was loud at `t` (near its recent peak, not silence): beats may coast through a
    /// stretch without drums only while this keeps coming at least once a period.
    pub fn note_loud(&mut self, t: f64) {
        if t - self.last_loud > 1.0 {
            self.sound_start = t;
        }
        self.last_loud = t;
    }

    /// The analyser's onset detector fired for an onset at `t`.
    pub fn note_onset(&mut self, t: f64) {
        self.last_dsp_onset = t;
    }

    /// The held tempo, if any.
    pub fn fixed_period(&self) -> Option<f64> {
        self.fixed_period
    }

    /// Puts a beat at `time` (a tap, an external clock's beat): the oscillator's phase jumps there.
    pub fn anchor_beat(&mut self, time: f64) {
        let pos = self.pos_at(time);
        self.pos_ref = pos.round();
        self.t_ref = time;
        self.started = true;
        // The beat at `time` counts as emitted.
        self.emitted_pos = self.pos_ref;
        self.last_emit = Some(time);
    }

    /// Makes the beat nearest `now` beat 1 of the bar.
    pub fn redownbeat(&mut self, now: f64) {
        let pos = self.pos_at(now).round();
        let m = self.meter as i64;
        let in_bar = (pos as i64).rem_euclid(m);
        self.bar_offset = (-in_bar).rem_euclid(m);
    }

    fn pos_at(&self, t: f64) -> f64 {
        self.pos_ref + (t - self.t_ref) / self.period
    }

    /// One network frame ending at `t` with softmax `[none, beat, downbeat]` and the frame's
    /// low-band onset strength (sum of the positive log differences of the bands under ~60 Hz;
    /// 0 when unknown).
    pub fn observe(&mut self, t: f64, p: [f32; 3], low_onset: f32, flux: f32) {
        if flux > self.knobs.onset_ratio * self.flux_mean.max(LO_EPS) {
            if t - self.last_onset > 0.05 {
                self.prev_onset = self.last_onset;
            }
            self.last_onset = t;
        }
        self.flux_mean += FLUX_RATE * (flux - self.flux_mean);
        let lo = low_onset.max(self.lo_prev);
        let kick = if self.knobs.kick_gain > 0.0 {
            let r = lo / self.lo_mean.max(LO_EPS);
            1.0 + self.knobs.kick_gain
                * ((r - self.knobs.kick_from) / self.knobs.kick_sat).clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.lo_prev = low_onset;
        self.lo_mean += LO_MEAN_RATE * (low_onset - self.lo_mean);
        self.forward(p, kick);
        let mut rows = [0.0f32; ROWS];
        for (r, m) in rows.iter_mut().enumerate() {
            *m = self.block_mass[r * NI..(r + 1) * NI].iter().sum();
        }
        self.row_hist[self.hist_n % HIST] = rows;
        self.hist_n += 1;
        let (row, ii, q) = self.map_state();
        let (mi, beat) = meter_of_row(row);
        let meter = METERS[mi];
        let interval = (I_MIN + ii) as f64;
        // Fractional interval: mass-weighted mean near the best interval, in the best meter.
        let (mut wsum, mut isum) = (0.0f64, 0.0f64);
        for j in ii.saturating_sub(3)..(ii + 4).min(NI) {
            let mut m = 0.0f64;
            for b in 0..meter {
                m += f64::from(self.block_mass[row_of(mi, b) * NI + j]);
            }
            wsum += m;
            isum += m * (I_MIN + j) as f64;
        }
        let period_h = if wsum > 0.0 { isum / wsum } else { interval } / FPS;
        self.period_h = period_h;
        // The filter says which beat and how far into it; the oscillator smooths the
        // whole-frame steps.
        let frames_per_beat = interval;
        let since = (q as f64 + 0.5 + self.label_offset).min(frames_per_beat - 0.5);
        let pos_h = beat as f64 + since / frames_per_beat;
        let act = p[1] + p[2];
        if act >= ACT_ALIVE {
            self.last_alive = t;
        }
        self.steer(t, pos_h, period_h, meter);
        self.score(t, act);
    }

    fn steer(&mut self, t: f64, pos_h: f64, period_h: f64, meter: usize) {
        self.settle *= (-1.0 / (FPS * self.knobs.settle_s)).exp();
        if !self.started {
            self.started = true;
            self.settle = 1.0;
            self.meter = meter;
            self.period = self.fixed_period.unwrap_or(period_h);
            self.t_ref = t;
            self.pos_ref = pos_h;
            self.bar_since = t;
            return;
        }
        if self.fixed_period.is_some() && !self.active {
            // A held tempo free-runs from its anchor while the music has no beat.
            return;
        }
        let m = meter as f64;
        let pos_o = self.pos_at(t);
        // Error in beats, modulo the bar.
        let e = (pos_h - pos_o + m / 2.0).rem_euclid(m) - m / 2.0;
        let tempo_off = (period_h / self.period - 1.0).abs() > TEMPO_OFF;
        // Tempo and phase within the beat follow the filter whenever they roughly agree, even
        // while the bar position or meter disagree (a relabel waits, the beat grid must not:
        // frozen, the demo's first beats kept 124 BPM for a second while the filter read 120).
        let e_beat = e - e.round();
        if !tempo_off && e_beat.abs() < 0.35 {
            let boost = self.knobs.settle_gain * self.settle;
            self.t_ref = t;
            self.pos_ref = pos_o + (0.06 + boost) * e_beat;
            if self.fixed_period.is_none() {
                self.period += (0.03 + boost) * (period_h - self.period);
                // A lasting phase error means the period is off too (second-order loop).
                self.period *= 1.0 - 0.004 * e_beat;
            }
        }
        let small = !tempo_off && e.abs() < 0.35 && meter == self.meter;
        // A bar relabel alone: same tempo, same meter, whole beats.
        let relabel = !small && !tempo_off && meter == self.meter && (e - e.round()).abs() < 0.35;
        if small || (relabel && !self.relabel_sure(pos_h, e, meter)) {
            self.disagree = 0;
        } else {
            self.disagree += 1;
            // Follow at once while not emitting; otherwise only after a lasting disagreement
            // (half a beat), so one odd frame cannot move the beat.
            // Never on silence: without a recent activation the filter's guess is noise.
            // A bar relabel waits longer.
            let held = ((t - self.bar_since) / self.period).max(0.0);
            let pat = if relabel {
                (BAR_PATIENCE + BAR_PATIENCE_GROWTH * held).min(BAR_PATIENCE_MAX)
            } else {
                0.5
            };
            let patience = (pat * self.period.min(period_h) * FPS) as u32;
            let evidence = t - self.last_alive < 0.5 * self.period;
            let emitting = self.active
                || self
                    .last_emit
                    .is_some_and(|l| t - l < EMITTING * self.period);
            if evidence && (!emitting || self.disagree > patience) {
                self.bar_since = t;
                self.disagree = 0;
                self.meter = meter;
                if self.fixed_period.is_none() {
                    self.period = period_h;
                }
                if !self.active {
                    self.settle = 1.0;
                }
                self.t_ref = t;
                // Keep the unwrapped count continuous: the nearest value ≡ pos_h (mod bar).
                let k = ((pos_o - pos_h) / m).round();
                self.pos_ref = pos_h + k * m;
                // The beats already sent move with the grid: a bar relabel must not hold back
                // (or repeat) the next beats, only the phase correction counts.
                self.emitted_pos += (self.pos_ref - pos_o).round();
            }
        }
    }

    /// Whether the filter is sure enough of its own bar labelling to relabel the shown one (`e`
    /// beats away): it puts [`RELABEL_RATIO`] times more mass on its own, compared at the same
    /// point of the beat (the row of the filter's beat against the row `e` beats before it,
    /// over all tempi), and the last bar alone moved those odds [`RELABEL_RECENT`] times
    /// towards it (with less than a bar heard, all of it is the last bar).
    fn relabel_sure(&self, pos_h: f64, e: f64, meter: usize) -> bool {
        let Some(mi) = METERS.iter().position(|&m| m == meter) else {
            return true;
        };
        let beat_h = (pos_h.floor() as i64).rem_euclid(meter as i64);
        let beat_o = (beat_h - e.round() as i64).rem_euclid(meter as i64);
        let (rh, ro) = (row_of(mi, beat_h as usize), row_of(mi, beat_o as usize));
        let odds = |rows: &[f32; ROWS]| rows[rh] / rows[ro].max(f32::MIN_POSITIVE);
        let now = odds(&self.row_hist[(self.hist_n + HIST - 1) % HIST]);
        if now < RELABEL_RATIO {
            return false;
        }
        // One bar back, the same rows are at the same point of the beat.
        let back = ((meter as f64 * self.period_h * FPS).round() as usize).min(HIST - 1);
        if back >= self.hist_n {
            return true;
        }
        let then = odds(&self.row_hist[(self.hist_n - 1 - back) % HIST]);
        now >= RELABEL_RECENT * then
    }

    /// Confidence: how strongly the network fires where the oscillator puts beats.
    fn score(&mut self, t: f64, act: f32) {
        let pos = self.pos_at(t);
        let frac = pos.rem_euclid(1.0);
        if (frac - 0.5).abs() < 0.25 {
            self.between_max = self.between_max.max(act);
            self.in_between = true;
        } else if self.in_between {
            self.in_between = false;
            self.between += 0.35 * (self.between_max - self.between);
            self.between_max = 0.0;
        }
        if (0.2..0.8).contains(&frac) {
            self.off_acc.0 += act;
            self.off_acc.1 += 1;
        } else if self.off_acc.1 > 0 && frac >= 0.8 {
            let m = self.off_acc.0 / self.off_acc.1 as f32;
            self.tev_off += TEV_RATE * (m - self.tev_off);
            self.off_acc = (0.0, 0);
        }
        let d = (pos - pos.round()).abs() * self.period;
        if d <= BEAT_WINDOW {
            self.on_acc.0 += act;
            self.on_acc.1 += 1;
            self.win_max = self.win_max.max(act);
            self.in_win = true;
        } else if self.in_win {
            self.in_win = false;
            self.conf += 0.35 * (self.win_max - self.conf);
            if self.on_acc.1 > 0 {
                let m = self.on_acc.0 / self.on_acc.1 as f32;
                self.tev_on += TEV_RATE * (m - self.tev_on);
            }
            self.on_acc = (0.0, 0);
            let hit_bar = if self.tev >= TEV_ON { HIT_WEAK } else { HIT };
            let since_onset = (t - self.last_onset).min(t - self.last_dsp_onset);
            let onset_near = since_onset < HIT_ONSET * self.period;
            if self.win_max >= hit_bar && t - self.last_loud < self.knobs.hit_loud_s && onset_near {
                self.last_hit = t - BEAT_WINDOW;
            }
            self.win_max = 0.0;
        }
        let alive = t - self.last_alive < 1.5 * self.period;
        let sounding = t - self.last_loud < self.period
            && t - self.last_onset < self.knobs.coast_onset * self.period
            && t - self.prev_onset < self.knobs.coast_onset * self.period;
        let tev = self.tev_on / (self.tev_off + TEV_FLOOR);
        self.tev = tev;
        let in_grace = self.active && t - self.active_since < self.knobs.grace_s;
        let beaty = self.beatness >= self.knobs.beat_off || tev >= TEV_OFF || in_grace;
        let coast = self.active && sounding && beaty && t - self.last_hit < COAST * self.period;
        if !alive && !coast {
            self.conf = 0.0;
        }
        let hit = t - self.last_hit < HIT_GAP * self.period;
        self.confirmed = alive && hit;
        if self.beatness >= self.knobs.beat_off {
            self.doubted = false;
        }
        let on_level = if self.doubted {
            self.knobs.beat_off
        } else {
            self.knobs.beat_on
        };
        let contrast = self.conf >= self.knobs.contrast * self.between
            && (self.beatness >= on_level || tev >= TEV_ON);
        // Strong tempo evidence lowers the start bar: music without drums keeps the network's
        // activation low even where it is right.
        let conf_on = if tev >= TEV_ON { CONF_ON_WEAK } else { CONF_ON };
        if self.conf >= conf_on && alive && hit && contrast && (beaty || !self.active) {
            if !self.active {
                self.active_since = t;
            }
            self.active = true;
        } else if (self.conf < CONF_OFF || !alive || !hit || !beaty) && !coast {
            if self.active && !beaty {
                self.doubted = true;
            }
            self.active = false;
        }
    }

    /// The music's tempo (0 while it has no beat or the beat coasts), whatever tempo is held.
    pub fn detected_bpm(&self) -> f64 {
        if self.active && self.confirmed {
            60.0 / self.period_h
        } else {
            0.0
        }
    }

    /// Whether the input sounds like music (onsets are passed on only then).
    pub fn music(&self, now: f64) -> bool {
        now - self.last_loud > 1.0
            || now - self.sound_start < ONSET_GRACE_S
            || self.active
            || self.beatness >= ONSET_BEATNESS
            || self.tev >= ONSET_TEV
    }

    /// Whether beats are being emitted from the music.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Running mean of the per-frame log likelihood ratio of the beat model against one without
    /// beats (positive: the network fires where the model predicts beats).
    pub fn beatness(&self) -> f32 {
        self.beatness
    }

    /// Emits the beats due before `now + horizon`; `free_run` emits without music (tap/clock).
    /// Returns the reading at `now`.
    pub fn poll(
        &mut self,
        now: f64,
        horizon: f64,
        free_run: bool,
        emit: &mut impl FnMut(Beat),
    ) -> Reading {
        let on = self.started && (self.active || free_run);
        if !on {
            return Reading::default();
        }
        let bpm = 60.0 / self.period;
        let m = self.meter as i64;
        // Earliest beat not yet emitted: past the last one by half a period.
        let from = self
            .pos_at(now - 0.25 * self.period)
            .max(self.emitted_pos + 0.5);
        let next = from.ceil();
        let due = self.t_ref + (next - self.pos_ref) * self.period;
        let crowded = self
            .last_emit
            .is_some_and(|last| due - last < MIN_SPACING * self.period);
        if due < now + horizon && crowded {
            // The phase moved onto the beat just sent: it was this one.
            self.emitted_pos = next;
        } else if due < now + horizon {
            let in_bar = ((next as i64) + self.bar_offset).rem_euclid(m) as u32;
            emit(Beat {
                time: due,
                in_bar,
                bpm,
            });
            self.emitted_pos = next;
            self.last_emit = Some(due);
        }
        let pos = self.pos_at(now);
        let phase = pos.rem_euclid(1.0);
        let beat = ((pos.floor() as i64) + self.bar_offset).rem_euclid(m);
        Reading {
            bpm,
            phase,
            bar_position: beat as f64 + phase,
            beats_per_bar: self.meter as u32,
            confidence: if self.active { self.conf } else { 0.0 },
        }
    }

    fn forward(&mut self, p: [f32; 3], kick: f32) {
        // The network fires in the one frame holding the event (labels are one frame wide), so
        // only the first frame of a beat is "beat"; the second takes half (a peak one frame
        // late), and so does the last (a peak one frame early). Beat and downbeat leak a little
        // into each other so a confused bar position does not wipe out a right tempo. Floors
        // keep a missed beat from being fatal.
        let (pn, pb, pd) = (p[0].max(OBS_FLOOR), p[1], p[2]);
        let gain = self.knobs.obs_gain * kick;
        let (leak, down_gain) = (self.knobs.leak, self.knobs.down_gain);
        let beat_obs = gain * (pb + leak * pd).max(OBS_FLOOR);
        let down_obs = gain * (down_gain * pd + leak * pb).max(OBS_FLOOR);
        // Mass leaving the last position of every block, and where it enters (a new beat of
        // the next row, at this or another interval).
        for row in 0..ROWS {
            for ii in 0..NI {
                self.exit[row][ii] = self.states.last(row * NI + ii);
            }
        }
        self.incoming.fill(0.0);
        for row in 0..ROWS {
            let (mi, beat) = meter_of_row(row);
            let meter = METERS[mi];
            let prev = row_of(mi, (beat + meter - 1) % meter);
            let other_last = row_of(1 - mi, METERS[1 - mi] - 1);
            for from in 0..NI {
                let mut src = self.exit[prev][from];
                if beat == 0 {
                    src = (1.0 - METER_SWITCH) * src + METER_SWITCH * self.exit[other_last][from];
                }
                if src == 0.0 {
                    continue;
                }
                let (first, w) = &self.trans[from];
                let into = &mut self.incoming[row * NI + first..row * NI + first + w.len()];
                for (v, &wk) in into.iter_mut().zip(w) {
                    *v += src * wk;
                }
            }
        }
        // Move on and observe, block sums.
        let frame = self.states.begin(pn);
        let mut total = 0.0f32;
        for row in 0..ROWS {
            let (mi, beat) = meter_of_row(row);
            let o0 = if beat == 0 { down_obs } else { beat_obs };
            // The next beat's peak one frame early.
            let next_obs = if beat + 1 == METERS[mi] {
                down_obs
            } else {
                beat_obs
            };
            for ii in 0..NI {
                let k = row * NI + ii;
                let sum = self.states.advance(
                    &frame,
                    k,
                    self.incoming[k],
                    o0,
                    0.5 * (o0 + pn),
                    0.5 * (next_obs + pn),
                );
                self.block_mass[k] = sum;
                total += sum;
            }
        }
        // Beatness: the same frame under a model with no beat structure (every position of a beat
        // at the current interval equally likely, a 4-beat bar).
        let ib = (self.period_h * FPS).max(I_MIN as f64) as f32;
        let o_mix = 0.75 * beat_obs + 0.25 * down_obs;
        let null = (2.0 * o_mix + (ib - 2.0) * pn) / ib;
        if total > 0.0 && total.is_finite() {
            let llr = (total / null).ln();
            self.beatness += BEATNESS_RATE * (llr - self.beatness);
        }
        let n = self.states.len() as f32;
        if !(total > 0.0 && total.is_finite()) {
            self.states.fill(1.0 / n);
            self.block_mass.fill(0.0);
        } else {
            let scale = (1.0 - FLOOR_MIX) / total;
            self.states.scale(scale, FLOOR_MIX / n);
            for m in &mut self.block_mass {
                *m *= scale;
            }
        }
    }

    /// (row, interval index, position) of the most likely state.
    fn map_state(&mut self) -> (usize, usize, usize) {
        let (k, q) = self.states.argmax();
        (k / NI, k % NI, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: f64 = 256.0 / 48_000.0;

    /// Synthetic network output: a peak on each beat (downbeat every `bar` beats).
    fn act(t: f64, bpm: f64, bar: u32, t0: f64, until: f64) -> [f32; 3] {
        if t < t0 || t > until {
            return [1.0, 0.0, 0.0];
        }
        let period = 60.0 / bpm;
        let k = ((t - t0) / period).round();
        let d = (t - t0 - k * period).abs();
        // The frame holding the beat (events land in the frame that ends at or after them).
        let v = if d < 0.005 {
            0.9
        } else if d < 0.015 {
            0.3
        } else {
            0.0
        };
        if (k as i64).rem_euclid(i64::from(bar)) == 0 {
            [1.0 - v, 0.0, v]
        } else {
            [1.0 - v, v, 0.0]
        }
    }

    /// Runs the decoder with analyser hops between network frames; returns beats and the last
    /// reading.
    fn run(
        secs: f64,
        mut f: impl FnMut(f64) -> [f32; 3],
    ) -> (Vec<Beat>, Reading, Vec<(f64, Reading)>) {
        run_with_low(secs, |t| (f(t), 0.0))
    }

    /// As [`run`], the closure also giving the frame's low-band onset.
    fn run_with_low(
        secs: f64,
        mut f: impl FnMut(f64) -> ([f32; 3], f32),
    ) -> (Vec<Beat>, Reading, Vec<(f64, Reading)>) {
        let mut d = Decoder::new(0.0);
        let mut beats = Vec::new();
        let mut readings = Vec::new();
        let mut next_frame = 1usize;
        let mut r = Reading::default();
        let hops = (secs / HOP) as usize;
        for h in 1..=hops {
            let now = h as f64 * HOP;
            while next_frame as f64 / FPS <= now {
                let t = next_frame as f64 / FPS;
                let (p, low) = f(t);
                // The input sounds throughout (the level gate's view); the activation says
                // whether it has a beat.
                d.note_loud(t);
                // Something starts wherever the network fires (a confirmed beat needs an onset).
                let flux = if p[1] + p[2] >= 0.25 { 1.0 } else { 0.0 };
                d.observe(t, p, low, flux);
                next_frame += 1;
            }
            r = d.poll(now, HOP, false, &mut |b| beats.push(b));
            readings.push((now, r));
        }
        (beats, r, readings)
    }

    fn phase_err(t: f64, t0: f64, period: f64) -> f64 {
        let ph = ((t - t0) / period).rem_euclid(1.0);
        ph.min(1.0 - ph) * period
    }

    #[test]
    fn clean_pulse_trains_give_tempo_and_phase() {
        for bpm in [70.0, 128.0, 174.0, 190.0] {
            let (beats, r, _) = run(12.0, |t| act(t, bpm, 4, 0.5, 100.0));
            assert!((r.bpm - bpm).abs() / bpm < 0.01, "{bpm}: read {}", r.bpm);
            let late: Vec<_> = beats.iter().filter(|b| b.time > 6.0).collect();

            let want = (6.0 * bpm / 60.0) as usize;
            assert!(late.len() + 1 >= want, "{bpm}: {} beats", late.len());
            for b in &late {
                let e = phase_err(b.time, 0.5, 60.0 / bpm);
                // Within 3 frames: the filter's whole-frame intervals still pull the phase a little.
                assert!(e < 0.03, "{bpm}: beat at {} off by {e}", b.time);
                assert!(
                    (b.bpm - bpm).abs() / bpm < 0.015,
                    "{bpm}: beat bpm {}",
                    b.bpm
                );
            }
            // The reported period is the spacing of the emitted beats.
            let gaps = late.windows(2).map(|w| w[1].time - w[0].time);
            let mean = gaps.clone().sum::<f64>() / (late.len() - 1) as f64;
            assert!((60.0 / mean - r.bpm).abs() / bpm < 0.01, "{bpm}: {mean}");
        }
    }

    #[test]
    fn downbeats_of_three_and_four_beat_bars() {
        for bar in [3u32, 4] {
            let bpm = 120.0;
            let (beats, r, _) = run(14.0, |t| act(t, bpm, bar, 0.5, 100.0));
            assert_eq!(r.beats_per_bar, bar);
            for b in beats.iter().filter(|b| b.time > 7.0) {
                let k = ((b.time - 0.5) / 0.5).round() as i64;
                assert_eq!(
                    b.in_bar as i64,
                    k.rem_euclid(i64::from(bar)),
                    "{bar}: {b:?}"
                );
            }
        }
    }

    #[test]
    fn relocks_after_a_tempo_step() {
        // Goal (docs/performance.md): 2 s. Measured here: beats right again within 3 s of the step.
        // 120 BPM until 10 s, then 140 BPM with a beat at 10.2 s.
        let f = |t: f64| {
            if t < 10.0 {
                act(t, 120.0, 4, 0.5, 10.0)
            } else {
                act(t, 140.0, 4, 10.2, 100.0)
            }
        };
        let (beats, _, readings) = run(16.0, f);
        for b in beats.iter().filter(|b| b.time > 13.0) {
            let e = phase_err(b.time, 10.2, 60.0 / 140.0);
            assert!(e < 0.03, "beat at {} off by {e}", b.time);
        }
        let r = readings.iter().find(|(t, _)| *t > 13.0).map(|x| x.1);
        assert!(r.is_some_and(|r| (r.bpm - 140.0).abs() < 2.0), "{r:?}");
    }

    #[test]
    fn beats_stop_within_a_period_of_the_music_stopping() {
        let (beats, r, _) = run(14.0, |t| act(t, 128.0, 4, 0.5, 8.0));
        let last_act = 8.0;
        assert!(beats.iter().any(|b| b.time > 7.0));
        assert!(
            beats.iter().all(|b| b.time < last_act + 60.0 / 128.0),
            "{:?}",
            beats.last()
        );
        assert_eq!(r.bpm, 0.0);
        assert_eq!(r.confidence, 0.0);
    }

    /// Techno with hats as loud as the kick: the network fires as much between the kicks as on
    /// them (here the off-beat peaks come first, so without the kick evidence the filter has no
    /// reason to leave them); only the kicks have a low-band onset. The beats land on the kicks.
    #[test]
    fn low_band_onsets_pull_the_beat_off_the_off_beat() {
        let bpm = 128.0;
        let period = 60.0 / bpm;
        let kick0 = 0.5;
        let (beats, _, _) = run_with_low(20.0, |t| {
            let on = act(t, bpm, 4, kick0, 100.0);
            let off = act(t, bpm, 4, kick0 - period / 2.0, 100.0);
            // Off-beat peaks slightly stronger than the kicks' (the failure of issue 23).
            let pb = (0.8 * (on[1] + on[2]) + 0.9 * (off[1] + off[2])).min(0.95);
            let low = if on[1] + on[2] > 0.5 { 3.0 } else { 0.05 };
            ([1.0 - pb, pb, 0.0], low)
        });
        let late: Vec<_> = beats.iter().filter(|b| b.time > 10.0).collect();
        assert!(late.len() > 10, "{} beats", late.len());
        let on_kick = late
            .iter()
            .filter(|b| phase_err(b.time, kick0, period) < 0.04)
            .count();
        assert_eq!(on_kick, late.len(), "{late:?}");
    }

    /// A deterministic uniform [0, 1) source (xorshift64) for the noise tests.
    fn uniform(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Loud noise roughly as the network sees it (validx's loud-noise files: a murmur of
    /// 0.05-0.2 and strong peaks now and then, at random times): beats never run for long and
    /// the dashboard reads "no beat" at the end. (A guard, not the whole story: these
    /// independent random peaks get no lasting beat with or without the beatness rule; the
    /// rule's effect on real noise is measured on validx, docs/performance.md.)
    #[test]
    fn random_peaks_of_noise_get_no_lasting_beat() {
        let mut rnd = uniform(0x2545_f491_u64);
        let (beats, r, _) = run(40.0, |_| {
            let u = rnd();
            let a = if u < 0.03 {
                0.6 + 0.35 * rnd()
            } else {
                0.05 + 0.15 * rnd()
            } as f32;
            [1.0 - a, a, 0.0]
        });
        // The longest run of beats (gaps under 1.5 s) lasts no longer than the grace period
        // plus two beats.
        let mut longest = 0.0f64;
        let mut run_start = None::<f64>;
        for w in beats.windows(2) {
            if w[1].time - w[0].time < 1.5 {
                let s0 = *run_start.get_or_insert(w[0].time);
                longest = longest.max(w[1].time - s0);
            } else {
                run_start = None;
            }
        }
        assert!(
            longest < BEAT_GRACE_S + 1.5,
            "{longest} s of beats: {beats:?}"
        );
        assert!(beats.len() < 20, "{} beats: {beats:?}", beats.len());
        assert_eq!(r.bpm, 0.0);
    }

    /// Music without drums: the network fires weakly (0.45, under the 0.5 that confirms a
    /// beat) but on the beats and nowhere else. The tempo evidence lowers the bar, so the beat
    /// starts and keeps running.
    #[test]
    fn weak_peaks_on_the_beats_keep_their_beat() {
        let bpm = 96.0;
        let period = 60.0 / bpm;
        let (beats, r, _) = run(40.0, |t| {
            let k = ((t - 0.5) / period).round();
            let d = (t - 0.5 - k * period).abs();
            let a = if t >= 0.5 && d < 0.025 { 0.45 } else { 0.005 };
            [1.0 - a, a, 0.0]
        });
        assert!((r.bpm - bpm).abs() / bpm < 0.02, "read {}", r.bpm);
        let first = beats.first().map_or(f64::INFINITY, |b| b.time);
        assert!(first < 8.0, "first beat at {first} s");
        for w in beats.windows(2) {
            assert!(
                w[1].time - w[0].time < 1.5 * period,
                "gap {:.2}-{:.2} s",
                w[0].time,
                w[1].time
            );
        }
        assert!(beats.last().is_some_and(|b| b.time > 39.0));
    }

    /// Noise (random peaks): after the first seconds the decoder says "not music", so the DSP
    /// onset path stays quiet.
    #[test]
    fn noise_is_not_music_after_the_grace() {
        let mut rnd = uniform(0x9e37_79b9_u64);
        let mut d = Decoder::new(0.0);
        let (mut music, mut frames) = (0, 0);
        for k in 1..4000 {
            let t = k as f64 / FPS;
            let u = rnd();
            let a = if u < 0.03 {
                0.6 + 0.35 * rnd()
            } else {
                0.05 + 0.15 * rnd()
            } as f32;
            d.note_loud(t);
            d.observe(t, [1.0 - a, a, 0.0], 0.0, if a >= 0.25 { 1.0 } else { 0.0 });
            if t < ONSET_GRACE_S {
                assert!(d.music(t), "the first onsets of a sound pass");
            } else if t > 10.0 {
                frames += 1;
                music += usize::from(d.music(t));
            }
        }
        assert!(music * 10 < frames, "music on {music} of {frames} frames");
    }

    #[test]
    fn zero_activation_gives_no_beats() {
        let (beats, r, _) = run(10.0, |_| [1.0, 0.0, 0.0]);
        assert!(beats.is_empty());
        assert_eq!(r, Reading::default());
    }
}
