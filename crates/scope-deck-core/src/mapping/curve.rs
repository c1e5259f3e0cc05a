//! Response curves: how a normalised input (0..1) becomes a normalised output (0..1).
//!
//! Every curve maps 0 → 0 and 1 → 1 and is monotonic, so ranges and inversion compose freely.
//! `shape` sets how pronounced the bend is (default 3 for exp/log, 8 for the S-curve).

/// A response curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Curve {
    /// Straight through.
    Linear,
    /// Slow start, fast finish: quiet passages barely move the output, peaks push hard.
    Exp {
        /// Bend (> 0).
        k: f64,
    },
    /// Fast start, slow finish (the inverse of `Exp` with the same `k`): quiet detail shows.
    Log {
        /// Bend (> 0).
        k: f64,
    },
    /// Logistic S: a soft gate around the middle of the input range.
    SCurve {
        /// Steepness (> 0).
        k: f64,
    },
}

impl Curve {
    /// Parses a curve name and optional shape; the error says what is accepted.
    pub fn parse(name: &str, shape: Option<f64>) -> Result<Curve, String> {
        if let Some(s) = shape {
            if !(s.is_finite() && s > 0.0 && s <= 50.0) {
                return Err("shape must be a number above 0 and at most 50".into());
            }
        }
        match name {
            "linear" => {
                if shape.is_some() {
                    Err("shape does not apply to a linear curve".into())
                } else {
                    Ok(Curve::Linear)
                }
            }
            "exp" | "exponential" => Ok(Curve::Exp {
                k: shape.unwrap_or(3.0),
            }),
            "log" | "logarithmic" => Ok(Curve::Log {
                k: shape.unwrap_or(3.0),
            }),
            "s_curve" | "s" => Ok(Curve::SCurve {
                k: shape.unwrap_or(8.0),
            }),
            _ => Err("must be one of linear, exp, log, s_curve".into()),
        }
    }

    /// Applies the curve to `x` (clamped to 0..1 first).
    pub fn apply(self, x: f64) -> f64 {
        let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        let y = match self {
            Curve::Linear => x,
            Curve::Exp { k } => (k * x).exp_m1() / k.exp_m1(),
            Curve::Log { k } => (x * k.exp_m1()).ln_1p() / k,
            Curve::SCurve { k } => {
                let s = |v: f64| 1.0 / (1.0 + (-k * (v - 0.5)).exp());
                let (lo, hi) = (s(0.0), s(1.0));
                (s(x) - lo) / (hi - lo)
            }
        };
        y.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_table() {
        let exp = Curve::Exp { k: 3.0 };
        let log = Curve::Log { k: 3.0 };
        let s = Curve::SCurve { k: 8.0 };
        // (curve, x, expected y)
        let table: &[(Curve, f64, f64)] = &[
            (Curve::Linear, 0.0, 0.0),
            (Curve::Linear, 0.25, 0.25),
            (Curve::Linear, 1.0, 1.0),
            (Curve::Linear, -1.0, 0.0),
            (Curve::Linear, 2.0, 1.0),
            (Curve::Linear, f64::NAN, 0.0),
            (exp, 0.0, 0.0),
            (exp, 0.5, 0.182_426),
            (exp, 1.0, 1.0),
            (log, 0.0, 0.0),
            (log, 0.182_426, 0.5),
            (log, 1.0, 1.0),
            (s, 0.0, 0.0),
            (s, 0.5, 0.5),
            (s, 0.25, 0.105),
            (s, 1.0, 1.0),
        ];
        for (c, x, want) in table {
            let got = c.apply(*x);
            assert!((got - want).abs() < 1e-3, "{c:?}({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn curves_are_monotonic() {
        for c in [
            Curve::Linear,
            Curve::Exp { k: 0.5 },
            Curve::Exp { k: 10.0 },
            Curve::Log { k: 3.0 },
            Curve::SCurve { k: 20.0 },
        ] {
            let mut last = -1.0;
            for i in 0..=100 {
                let y = c.apply(f64::from(i) / 100.0);
                assert!(y >= last, "{c:?} not monotonic at {i}");
                last = y;
            }
        }
    }

    #[test]
    fn parse_table() {
        let table: &[(&str, Option<f64>, Result<Curve, ()>)] = &[
            ("linear", None, Ok(Curve::Linear)),
            ("linear", Some(2.0), Err(())),
            ("exp", None, Ok(Curve::Exp { k: 3.0 })),
            ("log", Some(5.0), Ok(Curve::Log { k: 5.0 })),
            ("s_curve", None, Ok(Curve::SCurve { k: 8.0 })),
            ("exp", Some(0.0), Err(())),
            ("exp", Some(f64::INFINITY), Err(())),
            ("cubic", None, Err(())),
        ];
        for (name, shape, want) in table {
            assert_eq!(
                Curve::parse(name, *shape).map_err(|_| ()),
                *want,
                "{name} {shape:?}"
            );
        }
    }
}
