//! The beat network (docs/beat-model.md, "Network"): input normalisation, `L` stacked GRU layers
//! (PyTorch semantics, gate order r, z, n), a linear head and a softmax over
//! `[none, beat, downbeat]`. Weights come from a safetensors file; shapes are read from it.
//! One step per frame, allocation-free after construction.

use safetensors::{Dtype, SafeTensors};

use super::features::FEATURES;

/// The committed model, compiled in.
pub static MODEL: &[u8] = include_bytes!("../../../../assets/beat/model.safetensors");

/// Weights `analyze --beat-model FILE` loaded in place of [`MODEL`] for the whole process (a
/// candidate scored without rebuilding; set once, before any tracker is built).
static MODEL_OVERRIDE: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();

/// The weights new trackers load: the override when one was set, else the compiled-in model.
pub fn model() -> &'static [u8] {
    MODEL_OVERRIDE.get().copied().unwrap_or(MODEL)
}

/// Makes every tracker built from now on load `bytes` (checked first) instead of the
/// compiled-in model. Once per process.
pub fn override_model(bytes: Vec<u8>) -> Result<(), ModelError> {
    Gru::from_bytes(&bytes)?;
    MODEL_OVERRIDE
        .set(Vec::leak(bytes))
        .map_err(|_| ModelError("the beat model was already replaced in this process".into()))
}

/// A malformed weights file.
#[derive(Debug, thiserror::Error)]
#[error("beat model: {0}")]
pub struct ModelError(String);

struct Layer {
    input: usize,
    /// Input and recurrent weights, column-major (`[input][3·hidden]`): see [`affine`].
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

/// Loaded weights plus the recurrent state.
pub struct Gru {
    hidden: usize,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    layers: Vec<Layer>,
    head_w: Vec<f32>,
    head_b: [f32; 3],
    /// Per layer hidden state.
    h: Vec<Vec<f32>>,
    x: Vec<f32>,
    gi: Vec<f32>,
    gh: Vec<f32>,
    version: String,
}

fn tensor(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
    let t = st
        .tensor(name)
        .map_err(|e| ModelError(format!("tensor {name}: {e}")))?;
    if t.dtype() != Dtype::F32 {
        return Err(ModelError(format!("{name} is {:?}, want F32", t.dtype())));
    }
    if t.shape() != shape {
        return Err(ModelError(format!(
            "{name} has shape {:?}, want {shape:?}",
            t.shape()
        )));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// tanh through one `exp` (libm's `tanhf` costs about three times as much; the absolute error,
/// ~1e-7, is what the GRU sees, far inside the golden fixture's 1e-4). `exp` saturates to
/// ±1 for |x| past ~44 instead of overflowing into NaN.
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
}

/// `out = b + W · x` with `W` stored column-major (`wt[k]` is column `k`, `out.len()` long):
/// one multiply-add of a whole column per input, which the compiler vectorises without the
/// per-row horizontal sums of a row-major dot product (`analyze` 1.1× faster overall).
#[inline]
fn affine(wt: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    out.copy_from_slice(b);
    for (col, &xk) in wt.chunks_exact(out.len()).zip(x) {
        for (o, w) in out.iter_mut().zip(col) {
            *o += w * xk;
        }
    }
}

/// A row-major `[rows][cols]` matrix in column-major order.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

impl Gru {
    /// The compiled-in model.
    pub fn builtin() -> Result<Self, ModelError> {
        Self::from_bytes(MODEL)
    }

    /// Loads a safetensors file (allocates).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError(format!("{e}")))?;
        let (_, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| ModelError(format!("{e}")))?;
        let version = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("model_version").cloned())
            .unwrap_or_else(|| "unknown".to_string());
        let head = st
            .tensor("head.weight")
            .map_err(|e| ModelError(format!("tensor head.weight: {e}")))?;
        let hidden = match head.shape() {
            [3, h] if *h > 0 => *h,
            s => {
                return Err(ModelError(format!(
                    "head.weight has shape {s:?}, want [3, H]"
                )));
            }
        };
        let mean = tensor(&st, "norm.mean", &[FEATURES])?;
        let std = tensor(&st, "norm.std", &[FEATURES])?;
        if std.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(ModelError("norm.std must be positive".into()));
        }
        let mut layers = Vec::new();
        let mut input = FEATURES;
        while st
            .tensor(&format!("gru.weight_ih_l{}", layers.len()))
            .is_ok()
        {
            let n = layers.len();
            let g = 3 * hidden;
            layers.push(Layer {
                input,
                w_ih: transpose(
                    &tensor(&st, &format!("gru.weight_ih_l{n}"), &[g, input])?,
                    g,
                    input,
                ),
                w_hh: transpose(
                    &tensor(&st, &format!("gru.weight_hh_l{n}"), &[g, hidden])?,
                    g,
                    hidden,
                ),
                b_ih: tensor(&st, &format!("gru.bias_ih_l{n}"), &[g])?,
                b_hh: tensor(&st, &format!("gru.bias_hh_l{n}"), &[g])?,
            });
            input = hidden;
        }
        if layers.is_empty() {
            return Err(ModelError("no gru.weight_ih_l0".into()));
        }
        let head_w = tensor(&st, "head.weight", &[3, hidden])?;
        let hb = tensor(&st, "head.bias", &[3])?;
        Ok(Gru {
            hidden,
            inv_std: std.iter().map(|s| 1.0 / s).collect(),
            mean,
            h: vec![vec![0.0; hidden]; layers.len()],
            layers,
            head_w,
            head_b: [hb[0], hb[1], hb[2]],
            x: vec![0.0; FEATURES.max(hidden)],
            gi: vec![0.0; 3 * hidden],
            gh: vec![0.0; 3 * hidden],
            version,
        })
    }

    /// `model_version` from the file's metadata.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// (layers, hidden units).
    pub fn shape(&self) -> (usize, usize) {
        (self.layers.len(), self.hidden)
    }

    /// Forgets the recurrent state.
    pub fn reset(&mut self) {
        self.h.iter_mut().for_each(|h| h.fill(0.0));
    }

    /// One frame: raw features in, softmax `[none, beat, downbeat]` out.
    pub fn step(&mut self, raw: &[f32; FEATURES]) -> [f32; 3] {
        let hsz = self.hidden;
        for (i, v) in raw.iter().enumerate() {
            self.x[i] = (v - self.mean[i]) * self.inv_std[i];
        }
        for (layer, h) in self.layers.iter().zip(self.h.iter_mut()) {
            let x = &self.x[..layer.input];
            affine(&layer.w_ih, &layer.b_ih, x, &mut self.gi);
            affine(&layer.w_hh, &layer.b_hh, h, &mut self.gh);
            for (j, hj) in h.iter_mut().enumerate() {
                let r = sigmoid(self.gi[j] + self.gh[j]);
                let z = sigmoid(self.gi[hsz + j] + self.gh[hsz + j]);
                let n = tanh(self.gi[2 * hsz + j] + r * self.gh[2 * hsz + j]);
                *hj = (1.0 - z) * n + z * *hj;
            }
            self.x[..hsz].copy_from_slice(h);
        }
        let mut logits = self.head_b;
        for (l, row) in logits.iter_mut().zip(self.head_w.chunks_exact(hsz)) {
            *l += row
                .iter()
                .zip(&self.x[..hsz])
                .map(|(a, b)| a * b)
                .sum::<f32>();
        }
        let m = logits[0].max(logits[1]).max(logits[2]);
        let e = logits.map(|l| (l - m).exp());
        let s = e[0] + e[1] + e[2];
        e.map(|v| v / s)
    }
}

/// Writes a safetensors file of random weights (tests and the placeholder model).
#[cfg(test)]
pub fn random_model(layers: usize, hidden: usize, seed: u64) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, fill: &mut dyn FnMut() -> f32| {
        let n: usize = shape.iter().product();
        let bytes = (0..n).flat_map(|_| fill().to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    };
    add("norm.mean".into(), vec![FEATURES], &mut || 0.5);
    add("norm.std".into(), vec![FEATURES], &mut || 0.7);
    let mut input = FEATURES;
    for n in 0..layers {
        add(
            format!("gru.weight_ih_l{n}"),
            vec![3 * hidden, input],
            &mut rnd,
        );
        add(
            format!("gru.weight_hh_l{n}"),
            vec![3 * hidden, hidden],
            &mut rnd,
        );
        add(format!("gru.bias_ih_l{n}"), vec![3 * hidden], &mut rnd);
        add(format!("gru.bias_hh_l{n}"), vec![3 * hidden], &mut rnd);
        input = hidden;
    }
    add("head.weight".into(), vec![3, hidden], &mut rnd);
    add("head.bias".into(), vec![3], &mut rnd);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .filter_map(|(n, s, b)| Some((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).ok()?)))
        .collect();
    let meta =
        std::collections::HashMap::from([("model_version".to_string(), "random-test".to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_come_from_the_file() {
        let g = Gru::from_bytes(&random_model(3, 16, 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.shape(), (3, 16));
        assert_eq!(g.version(), "random-test");
        let g = Gru::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(g.shape().0 >= 1);
    }

    #[test]
    fn malformed_files_are_named_errors() {
        assert!(Gru::from_bytes(b"not a model").is_err());
        // Drop the head: the error names the tensor.
        let mut bytes = random_model(1, 8, 2);
        let pos = bytes.windows(11).position(|w| w == b"head.weight");
        if let Some(p) = pos {
            bytes[p..p + 11].copy_from_slice(b"head.wXight");
        }
        let e = Gru::from_bytes(&bytes).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("head.weight")));
    }

    #[test]
    fn step_is_a_distribution_and_causal() {
        let mut g = Gru::from_bytes(&random_model(2, 12, 3)).unwrap_or_else(|e| panic!("{e}"));
        let mut a = [0.3f32; FEATURES];
        let p0: Vec<[f32; 3]> = (0..5).map(|_| g.step(&a)).collect();
        for p in &p0 {
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // Later input does not change earlier outputs; the state carries over.
        g.reset();
        let q0 = g.step(&a);
        assert_eq!(q0, p0[0]);
        a[0] = 5.0;
        let q1 = g.step(&a);
        assert_ne!(q1, p0[1]);
    }
}
