use candle_core::{Device, Tensor};
use vivace_models::vits::cpu_conv::FusedConv;
fn main() -> candle_core::Result<()> {
    for &(c, k, d, len) in &[
        (32usize, 7usize, 3usize, 4096usize),
        (32, 3, 1, 88000),
        (64, 7, 3, 22000),
        (128, 7, 3, 2800),
        (192, 5, 1, 340),
    ] {
        let w = Tensor::randn(0f32, 0.1, (c, c, k), &Device::Cpu)?;
        let x = Tensor::randn(0f32, 1.0, (1, c, len), &Device::Cpu)?;
        let conv = FusedConv::new(&w, None, d)?;
        let reps = (2e9 / (c * c * k * len) as f64).ceil() as usize;
        for resid in [true] {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                let _ = conv.forward(&x, 0.1, if resid { Some(&x) } else { None })?;
            }
            let e = t.elapsed().as_secs_f64();
            println!(
                "c{c} k{k} len{len} resid {resid}: {:.1} GFLOP/s",
                2.0 * (c * c * k * len * reps) as f64 / e / 1e9
            );
        }
    }
    Ok(())
}
