//! The decoder's state probabilities, stored so that one frame costs O(blocks), not O(states).
//!
//! A block is one (bar row, beat interval) of the bar-pointer model: `len` positions through a
//! beat. Every frame each block's mass moves one position on, and every position but three (the
//! first two and the last, where a beat is observed) is multiplied by the same "no beat"
//! probability; the normalisation then multiplies every state by one factor and adds one floor.
//! Written out, that is four passes over ~32 000 states per frame, half of `analyze`'s time.
//! Here each block is a ring buffer (moving on = moving its head) of *raw* values, and one affine
//! map shared by all states turns a raw value into a probability: `p = a * raw + b`. The shared
//! multiplications and the floor change only `a` and `b`; a frame rewrites three raw values per
//! block. Block sums are kept up to date from those writes, and each block keeps an upper bound
//! of its raw values (exact until its largest value is lowered), so the most likely state is found
//! by rescanning only the blocks whose bound beats every other block's.
//! Allocation-free after construction.

/// Block sums are recomputed from the raw values this often (frames), so rounding in the
/// running sums cannot build up.
const RESUM_EVERY: u32 = 256;
/// The affine map is folded into the raw values when `a` leaves this range.
const A_RANGE: (f32, f32) = (1e-12, 1e12);

pub struct States {
    raw: Vec<f32>,
    /// First slot and length of each block.
    start: Vec<usize>,
    len: Vec<usize>,
    /// Slot of each block's position 0.
    head: Vec<usize>,
    /// Sum of each block's raw values.
    raw_sum: Vec<f32>,
    /// An upper bound of each block's raw values; while `exact`, the value at `max_slot`.
    bound: Vec<f32>,
    max_slot: Vec<usize>,
    exact: Vec<bool>,
    a: f32,
    b: f32,
    frames: u32,
}

impl States {
    /// Blocks of the given lengths, each state starting at `init(block)` (allocates).
    pub fn new(lens: &[usize], init: impl Fn(usize) -> f32) -> Self {
        let mut start = Vec::with_capacity(lens.len());
        let mut n = 0;
        for &l in lens {
            assert!(
                l >= 3,
                "a block needs its first two and last positions apart"
            );
            start.push(n);
            n += l;
        }
        let mut raw = vec![0.0; n];
        for (k, (&s, &l)) in start.iter().zip(lens).enumerate() {
            raw[s..s + l].fill(init(k));
        }
        let mut states = States {
            raw,
            start: start.clone(),
            len: lens.to_vec(),
            head: start,
            raw_sum: vec![0.0; lens.len()],
            bound: vec![0.0; lens.len()],
            max_slot: vec![0; lens.len()],
            exact: vec![false; lens.len()],
            a: 1.0,
            b: 0.0,
            frames: 0,
        };
        states.resum();
        states
    }

    /// Number of states.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Probability of `block`'s position `q`.
    pub fn get(&self, block: usize, q: usize) -> f32 {
        self.a * self.raw[self.slot(block, q)] + self.b
    }

    /// Probability of `block`'s last position (the mass about to leave it).
    pub fn last(&self, block: usize) -> f32 {
        self.get(block, self.len[block] - 1)
    }

    fn slot(&self, block: usize, q: usize) -> usize {
        let (s, l) = (self.start[block], self.len[block]);
        let off = self.head[block] - s + q;
        s + if off >= l { off - l } else { off }
    }

    /// Starts a frame: every state will be multiplied by `pn` (the "no beat" observation) except
    /// those [`Self::advance`] sets. Returns the map to hand to `advance` for every block.
    pub fn begin(&mut self, pn: f32) -> Frame {
        let frame = Frame {
            a0: self.a,
            b0: self.b,
            a1: self.a * pn,
            b1: self.b * pn,
        };
        self.a = frame.a1;
        self.b = frame.b1;
        frame
    }

    /// Moves `block` one position on: `incoming` enters at position 0 observed with `o_first`,
    /// the old position 0 moves to 1 observed with `o_second`, the old next-to-last position
    /// becomes the last, observed with `o_last`; the rest were multiplied by `pn` in
    /// [`Self::begin`]. Returns the block's new sum (probabilities).
    pub fn advance(
        &mut self,
        f: &Frame,
        block: usize,
        incoming: f32,
        o_first: f32,
        o_second: f32,
        o_last: f32,
    ) -> f32 {
        let l = self.len[block];
        let old_first = self.slot(block, 0);
        let old_before_last = self.slot(block, l - 2);
        let leaving = self.slot(block, l - 1);
        let t_first = f.a0 * self.raw[old_first] + f.b0;
        let t_before_last = f.a0 * self.raw[old_before_last] + f.b0;
        self.head[block] = leaving;
        let raw_of = |p: f32| (p - f.b1) / f.a1;
        let writes = [
            (leaving, raw_of(incoming * o_first)),
            (old_first, raw_of(t_first * o_second)),
            (old_before_last, raw_of(t_before_last * o_last)),
        ];
        for (slot, v) in writes {
            self.raw_sum[block] += v - self.raw[slot];
            self.raw[slot] = v;
            if v >= self.bound[block] {
                self.bound[block] = v;
                self.max_slot[block] = slot;
                self.exact[block] = true;
            } else if slot == self.max_slot[block] {
                self.exact[block] = false;
            }
        }
        f.a1 * self.raw_sum[block] + f.b1 * l as f32
    }

    /// Ends a frame: every probability becomes `p * scale + floor`.
    pub fn scale(&mut self, scale: f32, floor: f32) {
        self.a *= scale;
        self.b = self.b * scale + floor;
        self.frames += 1;
        if !(A_RANGE.0..A_RANGE.1).contains(&self.a) || self.frames >= RESUM_EVERY {
            self.fold();
        }
    }

    /// Every state becomes `p`.
    pub fn fill(&mut self, p: f32) {
        self.raw.fill(p);
        self.a = 1.0;
        self.b = 0.0;
        self.resum();
    }

    /// (block, position) of the most likely state.
    pub fn argmax(&mut self) -> (usize, usize) {
        loop {
            let k = argmax(&self.bound);
            if self.exact[k] {
                let (m, l) = (self.max_slot[k], self.len[k]);
                let off = m + l - self.head[k];
                return (k, if off >= l { off - l } else { off });
            }
            self.rescan(k);
        }
    }

    fn rescan(&mut self, k: usize) {
        let (s, l) = (self.start[k], self.len[k]);
        let m = s + argmax(&self.raw[s..s + l]);
        self.max_slot[k] = m;
        self.bound[k] = self.raw[m];
        self.exact[k] = true;
    }

    /// Writes the affine map into the raw values and recomputes sums and maxima.
    fn fold(&mut self) {
        let (a, b) = (self.a, self.b);
        for v in &mut self.raw {
            *v = a * *v + b;
        }
        self.a = 1.0;
        self.b = 0.0;
        self.resum();
    }

    fn resum(&mut self) {
        self.frames = 0;
        for k in 0..self.len.len() {
            let (s, l) = (self.start[k], self.len[k]);
            self.raw_sum[k] = self.raw[s..s + l].iter().sum();
            self.rescan(k);
        }
    }
}

/// The affine map before and after a frame's shared "no beat" multiplication.
pub struct Frame {
    a0: f32,
    b0: f32,
    a1: f32,
    b1: f32,
}

/// Index of the first largest value.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same frames written out state by state, as the decoder did before.
    struct Dense {
        blocks: Vec<Vec<f32>>,
    }

    impl Dense {
        fn advance(&mut self, k: usize, incoming: f32, o: [f32; 4]) -> f32 {
            let [o_first, o_second, o_last, pn] = o;
            let b = &mut self.blocks[k];
            let l = b.len();
            b.rotate_right(1);
            b[0] = incoming;
            for (q, v) in b.iter_mut().enumerate() {
                *v *= if q == 0 {
                    o_first
                } else if q == 1 {
                    o_second
                } else if q == l - 1 {
                    o_last
                } else {
                    pn
                };
            }
            b.iter().sum()
        }
    }

    fn xorshift(state: &mut u64) -> f32 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 40) as f32 / (1u64 << 24) as f32
    }

    #[test]
    fn matches_the_written_out_model_over_many_frames() {
        let lens = [3usize, 5, 8, 13];
        let init = |k: usize| 0.1 / (k + 1) as f32;
        let mut lazy = States::new(&lens, init);
        let mut dense = Dense {
            blocks: lens
                .iter()
                .enumerate()
                .map(|(k, &l)| vec![init(k); l])
                .collect(),
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for frame in 0..3000 {
            let pn = 0.2 + 0.8 * xorshift(&mut rng);
            let exits: Vec<f32> = (0..lens.len()).map(|k| lazy.last(k)).collect();
            for (k, e) in exits.iter().enumerate() {
                let want = dense.blocks[k][lens[k] - 1];
                assert!(
                    (e - want).abs() <= 1e-4 * want.abs() + 1e-9,
                    "frame {frame}"
                );
            }
            let f = lazy.begin(pn);
            let mut total = 0.0;
            let mut dense_total = 0.0;
            for k in 0..lens.len() {
                let incoming = exits[(k + 1) % lens.len()];
                let o = [
                    4.0 * xorshift(&mut rng),
                    xorshift(&mut rng),
                    2.0 * xorshift(&mut rng),
                    pn,
                ];
                total += lazy.advance(&f, k, incoming, o[0], o[1], o[2]);
                dense_total += dense.advance(k, incoming, o);
            }
            assert!(
                (total - dense_total).abs() <= 1e-4 * dense_total,
                "frame {frame}"
            );
            let (scale, floor) = (1.0 / total, 1e-6);
            lazy.scale(scale, floor);
            for b in &mut dense.blocks {
                for v in b.iter_mut() {
                    *v = *v * (1.0 / dense_total) + floor;
                }
            }
            let (k, q) = lazy.argmax();
            let best = dense
                .blocks
                .iter()
                .flatten()
                .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let got = dense.blocks[k][q];
            assert!(
                (got - best).abs() <= 1e-4 * best,
                "frame {frame}: argmax {got} vs {best}"
            );
            for (kk, b) in dense.blocks.iter().enumerate() {
                for (qq, &v) in b.iter().enumerate() {
                    assert!(
                        (lazy.get(kk, qq) - v).abs() <= 1e-4 * v + 1e-7,
                        "frame {frame}"
                    );
                }
            }
        }
    }

    #[test]
    fn fill_resets_every_state() {
        let mut s = States::new(&[4, 6], |_| 0.5);
        let f = s.begin(0.5);
        s.advance(&f, 0, 1.0, 2.0, 1.0, 1.0);
        s.advance(&f, 1, 0.0, 2.0, 1.0, 1.0);
        s.scale(3.0, 0.1);
        s.fill(0.1);
        for (k, l) in [(0, 4), (1, 6)] {
            for q in 0..l {
                assert_eq!(s.get(k, q), 0.1);
            }
        }
        assert_eq!(s.len(), 10);
    }
}
