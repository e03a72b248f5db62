//! The inverse rational-quadratic spline of the stochastic duration predictor.
//!
//! Mirrors `piecewise_rational_quadratic_transform(..., inverse=True,
//! tails="linear")` of VITS `transforms.py` (after Durkan et al., "Neural Spline
//! Flows", 2019). It runs on a handful of values per token, so it is plain
//! Rust on `f32`, in the same order of operations as the reference.

/// Minimum bin width, height and knot derivative (`DEFAULT_MIN_*` in VITS).
const MIN_BIN: f32 = 1e-3;
const MIN_DERIVATIVE: f32 = 1e-3;

/// Inverts the spline for one value `y` with its `3 * bins - 1` raw parameters
/// (`bins` widths, `bins` heights, `bins - 1` inner derivatives, the widths and
/// heights already divided by `sqrt(filter_channels)`). Outside
/// `[-tail_bound, tail_bound]` the transform is the identity.
pub fn inverse(y: f32, params: &[f32], bins: usize, tail_bound: f32) -> f32 {
    if !(-tail_bound..=tail_bound).contains(&y) {
        return y;
    }
    let (left, right, bottom, top) = (-tail_bound, tail_bound, -tail_bound, tail_bound);
    let cumwidths = knots(&params[..bins], left, right);
    let cumheights = knots(&params[bins..2 * bins], bottom, top);
    // Derivatives at the knots; the outer two are fixed so the tails join linearly
    // (softplus(log(exp(1 - min) - 1)) + min == 1).
    let boundary = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln();
    let derivative = |k: usize| {
        let raw = if k == 0 || k == bins {
            boundary
        } else {
            params[2 * bins + k - 1]
        };
        MIN_DERIVATIVE + softplus(raw)
    };

    // searchsorted on the knots' heights, with the last knot nudged up by 1e-6.
    let mut bin = 0usize;
    for (k, &h) in cumheights.iter().enumerate() {
        let h = if k == bins { h + 1e-6 } else { h };
        if y >= h {
            bin = k;
        }
    }
    let bin = bin.min(bins - 1);

    let x0 = cumwidths[bin];
    let width = cumwidths[bin + 1] - cumwidths[bin];
    let y0 = cumheights[bin];
    let height = cumheights[bin + 1] - cumheights[bin];
    let delta = height / width;
    let d0 = derivative(bin);
    let d1 = derivative(bin + 1);

    let dy = y - y0;
    let sum = d0 + d1 - 2.0 * delta;
    let a = dy * sum + height * (delta - d0);
    let b = height * d0 - dy * sum;
    let c = -delta * dy;
    let discriminant = b * b - 4.0 * a * c;
    let root = (2.0 * c) / (-b - discriminant.sqrt());
    root * width + x0
}

/// Softmax of `raw`, floored at `MIN_BIN`, accumulated into `bins + 1` knots
/// spanning `[lo, hi]`.
fn knots(raw: &[f32], lo: f32, hi: f32) -> Vec<f32> {
    let n = raw.len();
    let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = raw.iter().map(|&v| (v - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    let mut knots = Vec::with_capacity(n + 1);
    knots.push(lo);
    let mut acc = 0.0f32;
    for e in &exps {
        acc += MIN_BIN + (1.0 - MIN_BIN * n as f32) * (e / total);
        knots.push((hi - lo) * acc + lo);
    }
    knots[n] = hi;
    knots
}

/// `log(1 + exp(x))` as PyTorch computes it (linear above 20).
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward spline, written from the same formulas, to check that
    /// `inverse` undoes it (VITS `rational_quadratic_spline`, inverse=False).
    fn forward(x: f32, params: &[f32], bins: usize, bound: f32) -> f32 {
        let cw = knots(&params[..bins], -bound, bound);
        let ch = knots(&params[bins..2 * bins], -bound, bound);
        let boundary = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln();
        let der = |k: usize| {
            MIN_DERIVATIVE
                + softplus(if k == 0 || k == bins {
                    boundary
                } else {
                    params[2 * bins + k - 1]
                })
        };
        let bin = (0..bins).rev().find(|&k| x >= cw[k]).unwrap_or(0);
        let (w, h) = (cw[bin + 1] - cw[bin], ch[bin + 1] - ch[bin]);
        let delta = h / w;
        let theta = (x - cw[bin]) / w;
        let t1 = theta * (1.0 - theta);
        let num = h * (delta * theta * theta + der(bin) * t1);
        let den = delta + (der(bin) + der(bin + 1) - 2.0 * delta) * t1;
        ch[bin] + num / den
    }

    #[test]
    fn inverse_undoes_forward() {
        let bins = 10;
        let params: Vec<f32> = (0..3 * bins - 1)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        for i in 0..41 {
            let x = -4.9 + i as f32 * 0.245;
            let y = forward(x, &params, bins, 5.0);
            let back = inverse(y, &params, bins, 5.0);
            assert!((back - x).abs() < 1e-4, "x={x} y={y} back={back}");
        }
    }

    #[test]
    fn identity_outside_the_tails() {
        let params = vec![0.0; 29];
        assert_eq!(inverse(7.5, &params, 10, 5.0), 7.5);
        assert_eq!(inverse(-5.5, &params, 10, 5.0), -5.5);
    }

    #[test]
    fn uniform_parameters_give_identity() {
        // Equal widths and heights with unit derivatives: the spline is y = x.
        let boundary = ((1.0f32 - MIN_DERIVATIVE).exp() - 1.0).ln();
        let mut params = vec![0.0; 20];
        params.extend(std::iter::repeat_n(boundary, 9));
        for y in [-4.0f32, -0.3, 0.0, 2.2, 4.99] {
            assert!((inverse(y, &params, 10, 5.0) - y).abs() < 1e-5);
        }
    }
}
