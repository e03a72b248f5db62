//! The 20-point DFT of the generator's STFT computed as onnxruntime's CPU
//! `STFT` computes it, so that the phases of (numerically) empty bins,
//! which the model reads as features, come out the same: a length that is
//! not a power of two goes through Bluestein's chirp-z transform over
//! radix-2 FFTs of the next power of two ≥ 2N − 1, every product and sum in
//! f32 in onnxruntime's order (its twiddle table built once, for the
//! forward direction, and reused by the inverse, whose output is read
//! reversed).

/// A complex number in f32, multiplied as `(ac − bd, ad + bc)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct C32 {
    re: f32,
    im: f32,
}

impl C32 {
    fn mul(self, o: C32) -> C32 {
        C32 {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn scale(self, s: f32) -> C32 {
        C32 {
            re: self.re * s,
            im: self.im * s,
        }
    }
    fn add(self, o: C32) -> C32 {
        C32 {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}

/// `num`'s lowest `bits` bits reversed.
fn bit_reverse(num: usize, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    ((num as u32).reverse_bits() >> (32 - bits)) as usize
}

/// onnxruntime's `fft_radix2` over `x` (length a power of two) with the
/// twiddle table `v`; `inverse` only divides by the length.
fn fft_radix2(x: &[C32], v: &[C32], inverse: bool) -> Vec<C32> {
    let n = x.len();
    let bits = n.trailing_zeros();
    let one = C32 { re: 1.0, im: 0.0 };
    let mut y: Vec<C32> = (0..n)
        .map(|i| one.mul(x[bit_reverse(i, bits)]).mul(one))
        .collect();
    let mut size = 2;
    let mut current = 0;
    while size <= n {
        let mid = size / 2;
        current += 1;
        for k in 0..mid {
            let first = v[bit_reverse(k, current)];
            let second = v[bit_reverse(mid + k, current)];
            for j in (0..n).step_by(size) {
                let (even, odd) = (y[k + j], y[k + j + mid]);
                y[k + j] = even.add(first.mul(odd));
                y[k + j + mid] = even.add(second.mul(odd));
            }
        }
        size <<= 1;
    }
    if inverse {
        let len = n as f32;
        for c in y.iter_mut() {
            *c = C32 {
                re: c.re / len,
                im: c.im / len,
            };
        }
    }
    y
}

/// onnxruntime's DFT of real frames of one length with one window.
pub struct OrtDft {
    n: usize,
    m: usize,
    twiddles: Vec<C32>,
    chirp: Vec<C32>,
    b_fft: Vec<C32>,
}

impl OrtDft {
    /// The transform for frames of `n` samples (not a power of two).
    pub fn new(n: usize) -> Self {
        let m = (2 * n - 1).next_power_of_two();
        let bits = m.trailing_zeros();
        // compute_angular_velocity: −2π/M with π as the f32 3.14159265.
        let pi = std::f32::consts::PI;
        let velocity = -(2.0 * pi) / m as f32;
        let mut twiddles = vec![C32::default(); m];
        for i in 0..m {
            let angle = i as f32 * velocity;
            twiddles[bit_reverse(i, bits)] = C32 {
                re: angle.cos(),
                im: angle.sin(),
            };
        }
        let mut chirp = vec![C32::default(); m];
        let mut b = vec![C32::default(); m];
        for k in 0..n {
            let exponent = -pi * k as f32 * k as f32 / n as f32;
            chirp[k] = C32 {
                re: exponent.cos(),
                im: exponent.sin(),
            };
            b[k] = C32 {
                re: chirp[k].re,
                im: -chirp[k].im,
            };
        }
        for k in m - n + 1..m {
            b[k] = b[m - k];
        }
        let b_fft = fft_radix2(&b, &twiddles, false);
        Self {
            n,
            m,
            twiddles,
            chirp,
            b_fft,
        }
    }

    /// The first `bins` outputs of the windowed frame's DFT as (re, im).
    pub fn transform(&self, frame: &[f32], window: &[f32], bins: usize) -> Vec<(f32, f32)> {
        let mut a = vec![C32::default(); self.m];
        for (k, a_k) in a.iter_mut().enumerate().take(self.n.min(frame.len())) {
            let w = window.get(k).copied().unwrap_or(1.0);
            *a_k = C32 {
                re: frame[k],
                im: 0.0,
            }
            .scale(w)
            .mul(self.chirp[k]);
        }
        let mut a_fft = fft_radix2(&a, &self.twiddles, false);
        for (x, b) in a_fft.iter_mut().zip(&self.b_fft) {
            *x = x.mul(*b);
        }
        let c = fft_radix2(&a_fft, &self.twiddles, true);
        (0..bins.min(self.n))
            .map(|i| {
                let c_i = if i == 0 { c[0] } else { c[self.m - i] };
                let out = c_i.mul(self.chirp[i]).scale(1.0);
                (out.re, out.im)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::OrtDft;

    #[test]
    fn bluestein_agrees_with_the_definition() {
        // A 20-point DFT against the sum e^{-2πikn/20} in f64.
        let frame: Vec<f32> = (0..20).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let window = vec![1.0; 20];
        let got = OrtDft::new(20).transform(&frame, &window, 11);
        for (k, (re, im)) in got.iter().enumerate() {
            let (mut wr, mut wi) = (0f64, 0f64);
            for (n, &x) in frame.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * n) as f64 / 20.0;
                wr += f64::from(x) * a.cos();
                wi += f64::from(x) * a.sin();
            }
            assert!(
                (f64::from(*re) - wr).abs() < 1e-4 && (f64::from(*im) - wi).abs() < 1e-4,
                "{k}"
            );
        }
    }
}
