//! Tells when the received picture changes for good — the first frame that shows a new prompt, a
//! cache reset or a theme — so the glass-to-glass latency can be measured on the running show
//! (`crate::latency`). Pure: the video edge feeds it tiny thumbnails at the full frame rate.
//!
//! A change is a new steady level, not motion: cells (an 8×8 grid of RGB means) move more than
//! [`CELL_THRESHOLD`] away from their usual value — the median of the last [`HISTORY`] frames,
//! where at least three fifths of those frames agree with it — and stay away for
//! [`CONFIRM_FRAMES`] more frames, in at least [`MIN_CELLS`] cells; the change is dated by the
//! median of those cells' first moved frames. Cells that flicker (noise, a clock readout) have
//! no usual value and never count; something passing through a cell (a moving object, a flash)
//! leaves before it is confirmed.

/// Cells per thumbnail side (the edge averages its frames down to this grid).
pub const GRID: usize = 8;
/// Values per thumbnail: 8×8 cells × RGB.
pub const VALUES: usize = GRID * GRID * 3;
/// Frames the usual value of a cell is taken over (about a second at 30 fps).
pub const HISTORY: usize = 32;
/// A cell channel counts as moved when it is this far from its usual value (0..255).
pub const CELL_THRESHOLD: i16 = 20;
/// Frames within this of the median agree with it.
const AGREE: i16 = 8;
/// Cells (any channel) that must move together: a quarter of the picture, as a new prompt or a
/// cache reset repaints most of it, while a local event (an object, a clock readout ticking
/// over) does not count.
pub const MIN_CELLS: usize = GRID * GRID / 4;
/// Frames after the first that must still show the step (about 170 ms at 30 fps: longer than
/// an object takes to cross a cell).
pub const CONFIRM_FRAMES: usize = 5;

/// One thumbnail: `VALUES` bytes, cell-major (`(row * GRID + col) * 3 + channel`).
pub type Thumb = [u8; VALUES];

/// The step detector. Allocation-free per frame.
#[derive(Debug, Clone)]
pub struct ChangeDetector {
    history: [Thumb; HISTORY],
    filled: usize,
    next: usize,
    /// Per cell: since when it has been away from its usual value, and for how many frames
    /// after that one.
    away: [Option<(u64, usize)>; GRID * GRID],
}

impl Default for ChangeDetector {
    fn default() -> Self {
        ChangeDetector {
            history: [[0; VALUES]; HISTORY],
            filled: 0,
            next: 0,
            away: [None; GRID * GRID],
        }
    }
}

impl ChangeDetector {
    /// Feeds one frame received at `at` (any monotonic unit, e.g. microseconds). Returns the
    /// time of the frame that first showed a change, once that change is confirmed.
    pub fn push(&mut self, at: u64, frame: &Thumb) -> Option<u64> {
        if self.filled == HISTORY {
            let moved = self.moved(frame);
            for (away, moved) in self.away.iter_mut().zip(moved) {
                *away = match (*away, moved) {
                    (_, false) => None,
                    (None, true) => Some((at, 0)),
                    (Some((since, n)), true) => Some((since, n + 1)),
                };
            }
            let mut onsets = [0u64; GRID * GRID];
            let mut count = 0;
            for (since, n) in self.away.iter().flatten() {
                if *n >= CONFIRM_FRAMES {
                    onsets[count] = *since;
                    count += 1;
                }
            }
            if count >= MIN_CELLS {
                // The new picture becomes the usual one from here.
                self.filled = 0;
                self.away = [None; GRID * GRID];
                self.remember(frame);
                let onsets = &mut onsets[..count];
                return Some(*onsets.select_nth_unstable(count / 2).1);
            }
        }
        self.remember(frame);
        None
    }

    fn remember(&mut self, frame: &Thumb) {
        self.history[self.next] = *frame;
        self.next = (self.next + 1) % HISTORY;
        self.filled = (self.filled + 1).min(HISTORY);
    }

    /// The cells with a channel more than [`CELL_THRESHOLD`] from its usual value (channels
    /// without one never count).
    fn moved(&self, frame: &Thumb) -> [bool; GRID * GRID] {
        let mut moved = [false; GRID * GRID];
        let mut column = [0u8; HISTORY];
        for v in 0..VALUES {
            for (c, h) in column.iter_mut().zip(&self.history) {
                *c = h[v];
            }
            let median = i16::from(*column.select_nth_unstable(HISTORY / 2).1);
            let agree = column
                .iter()
                .filter(|x| (i16::from(**x) - median).abs() <= AGREE)
                .count();
            if agree * 5 >= HISTORY * 3 && (i16::from(frame[v]) - median).abs() > CELL_THRESHOLD {
                moved[v / 3] = true;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like the aiortc test peer's picture: a grey field, the top row of cells flickering
    /// every frame (the low bits of its frame counter), rows 1..3 of one column stepping every
    /// 16 frames (a higher counter bit: a local step), the lower half at level `block`, and a
    /// bar crossing it one cell column every 4 frames (back every 32).
    fn frame(n: u64, block: u8) -> Thumb {
        let mut t = [96u8; VALUES];
        for col in 0..GRID {
            let h = (n.wrapping_mul(2_654_435_761) ^ (col as u64 * 40_503)) >> 7;
            for ch in 0..3 {
                t[col * 3 + ch] = (h as u8) | 0x80 >> (n % 2);
            }
        }
        let bit = if (n / 16) % 2 == 1 { 255 } else { 0 };
        for row in 1..4 {
            for ch in 0..3 {
                t[(row * GRID + 3) * 3 + ch] = bit;
            }
        }
        for cell in 4 * GRID..GRID * GRID {
            for ch in 0..3 {
                t[cell * 3 + ch] = block;
            }
        }
        let bar = (n / 4) as usize % GRID;
        for row in 4..GRID {
            for ch in 0..3 {
                let v = &mut t[(row * GRID + bar) * 3 + ch];
                *v = v.saturating_add(26);
            }
        }
        t
    }

    #[test]
    fn a_step_is_reported_at_the_first_frame_that_shows_it() {
        let mut d = ChangeDetector::default();
        let mut seen = Vec::new();
        for n in 0..120u64 {
            let block = if n < 70 { 51 } else { 178 };
            if let Some(at) = d.push(n * 33, &frame(n, block)) {
                seen.push(at);
            }
        }
        assert_eq!(seen, vec![70 * 33]);
    }

    #[test]
    fn flicker_and_motion_alone_are_not_a_change() {
        let mut d = ChangeDetector::default();
        for n in 0..300u64 {
            assert_eq!(d.push(n * 33, &frame(n, 51)), None, "frame {n}");
        }
    }

    #[test]
    fn a_flash_that_does_not_stay_is_not_a_change() {
        let mut d = ChangeDetector::default();
        for n in 0..120u64 {
            let block = if (70..73).contains(&n) { 250 } else { 51 };
            assert_eq!(d.push(n * 33, &frame(n, block)), None, "frame {n}");
        }
    }

    #[test]
    fn the_next_change_is_seen_after_the_picture_settles_again() {
        let mut d = ChangeDetector::default();
        let mut seen = Vec::new();
        for n in 0..240u64 {
            let block = match n {
                0..70 => 51,
                70..150 => 178,
                _ => 20,
            };
            if let Some(at) = d.push(n, &frame(n, block)) {
                seen.push(at);
            }
        }
        assert_eq!(seen, vec![70, 150]);
    }
}
