//! Reader of the golden fixture (format written by training/beat/golden.py).

use super::super::features::Features;
use super::super::gru::Gru;

pub fn check(text: &str) {
    let g: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let net = Gru::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g["model_version"].as_str(), Some(net.version()));
    let cases = g["cases"].as_array().unwrap_or_else(|| panic!("cases"));
    assert!(!cases.is_empty());
    for c in cases {
        check_case(c);
    }
}

fn check_case(v: &serde_json::Value) {
    let sr = v["sample_rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("sample_rate"));
    let samples: Vec<f32> = v["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("samples"))
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
        .collect();
    let want_f = v["features"]
        .as_array()
        .unwrap_or_else(|| panic!("features"));
    let want_o = v["probs"].as_array().unwrap_or_else(|| panic!("probs"));
    let mut fe = Features::new(sr);
    let mut net = Gru::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut k = 0usize;
    fe.push(&samples, &mut |_, raw| {
        if let Some(wf) = want_f.get(k) {
            for (i, (a, b)) in raw
                .iter()
                .zip(wf.as_array().into_iter().flatten())
                .enumerate()
            {
                let b = b.as_f64().unwrap_or(f64::NAN) as f32;
                assert!((a - b).abs() <= 1e-4, "frame {k} feature {i}: {a} vs {b}");
            }
        }
        let p = net.step(raw);
        if let Some(wo) = want_o.get(k) {
            for (a, b) in p.iter().zip(wo.as_array().into_iter().flatten()) {
                let b = b.as_f64().unwrap_or(f64::NAN) as f32;
                assert!((a - b).abs() <= 1e-4, "frame {k} output: {p:?} vs {wo}");
            }
        }
        k += 1;
    });
    assert!(
        k >= want_f.len().max(1),
        "{k} frames for {} expected",
        want_f.len()
    );
}
