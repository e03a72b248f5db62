//! Throughput of Vivace's CPU convolution kernels against candle's own ops on
//! joe-medium's shapes (one 4-second sentence), side by side in one run:
//! GFLOP/s of `residual + conv(leaky_relu(x))` and of the upsamplers; then
//! a whole stage of residual blocks convolution by convolution against
//! [`MrfStage`] (tile by tile in cache).
//!
//! `cargo run --release -p vivace-models --example conv_kernels`
//! (`RAYON_NUM_THREADS=1` for one core).

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use vivace_models::nn::cpu_conv::{FusedConv, FusedConvTranspose};
use vivace_models::nn::cpu_mrf::MrfStage;

/// Runs `f` until about half a second has passed; returns seconds per call.
fn time_per_call(mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    f()?; // warm
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed().as_secs_f64() < 0.5 {
        f()?;
        calls += 1;
    }
    Ok(start.elapsed().as_secs_f64() / calls as f64)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    // 4 s at 22050 Hz: 345 frames; the decoder stages run at 8, 64, 256× that.
    let frames = 345;
    println!(
        "{:<34} {:>10} {:>10} {:>7}",
        "layer", "candle", "vivace", "ratio"
    );
    for &(name, c, k, d, len) in &[
        ("flow WaveNet conv 192→384, k5", 192, 5, 1, frames),
        ("decoder stage 1 resblock, k7 d3", 128, 7, 3, 8 * frames),
        ("decoder stage 2 resblock, k7 d3", 64, 7, 3, 64 * frames),
        ("decoder stage 3 resblock, k3 d1", 32, 3, 1, 256 * frames),
    ] {
        let c_out = if name.starts_with("flow") { 2 * c } else { c };
        let w = Tensor::randn(0f32, 0.05, (c_out, c, k), &dev)?;
        let bias = Tensor::randn(0f32, 0.05, c_out, &dev)?;
        let x = Tensor::randn(0f32, 1.0, (1, c, len), &dev)?;
        let residual = Tensor::randn(0f32, 1.0, (1, c_out, len), &dev)?;
        let fused = FusedConv::new(&w, Some(&bias), d)?;
        let pad = d * (k - 1) / 2;
        let candle = time_per_call(|| {
            candle_nn::ops::leaky_relu(&x, 0.1)?
                .conv1d(&w, pad, 1, d, 1)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)?
                + &residual
        })?;
        let vivace = time_per_call(|| fused.forward(&x, 0.1, Some(&residual)))?;
        let gflop = 2.0 * (c_out * c * k * len) as f64 / 1e9;
        println!(
            "{name:<34} {:>10.1} {:>10.1} {:>6.2}×",
            gflop / candle,
            gflop / vivace,
            candle / vivace
        );
    }
    for &(name, c_in, c_out, k, s, len) in &[
        ("decoder upsampler 1, 256→128 ×8", 256, 128, 16, 8, frames),
        ("decoder upsampler 3, 64→32 ×4", 64, 32, 8, 4, 64 * frames),
    ] {
        let w = Tensor::randn(0f32, 0.05, (c_in, c_out, k), &dev)?;
        let bias = Tensor::randn(0f32, 0.05, c_out, &dev)?;
        let x = Tensor::randn(0f32, 1.0, (1, c_in, len), &dev)?;
        let pad = (k - s) / 2;
        let fused = FusedConvTranspose::new(&w, Some(&bias), s, pad)?;
        // candle's fast path is unpadded; trim afterwards (what Vivace did before).
        let candle = time_per_call(|| {
            let y = candle_nn::ops::leaky_relu(&x, 0.1)?.conv_transpose1d(&w, 0, 0, s, 1, 1)?;
            let n = y.dim(2)? - 2 * pad;
            y.narrow(2, pad, n)?
                .broadcast_add(&bias.reshape((1, c_out, 1))?)
        })?;
        let vivace = time_per_call(|| fused.forward(&x, 0.1))?;
        let gflop = 2.0 * (c_in * c_out * k * len) as f64 / 1e9;
        println!(
            "{name:<34} {:>10.1} {:>10.1} {:>6.2}×",
            gflop / candle,
            gflop / vivace,
            candle / vivace
        );
    }
    println!("(GFLOP/s, direct-convolution multiply-adds × 2)");
    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>7}",
        "whole stage of residual blocks", "one by one", "in cache", "ratio"
    );
    for &(name, c, len) in &[
        ("decoder stage 2 (64 ch), 3 blocks", 64, 64 * frames),
        ("decoder stage 3 (32 ch), 3 blocks", 32, 256 * frames),
    ] {
        // joe-medium's ResBlock2s: kernels 3, 5, 7, dilations (1, 2), (2, 6), (3, 12).
        let mut blocks = Vec::new();
        for &(k, dilations) in &[(3, [1, 2]), (5, [2, 6]), (7, [3, 12])] {
            let mut steps = Vec::new();
            for d in dilations {
                let w = Tensor::randn(0f32, 0.05, (c, c, k), &dev)?;
                let bias = Tensor::randn(0f32, 0.05, c, &dev)?;
                steps.push(FusedConv::new(&w, Some(&bias), d)?);
            }
            blocks.push(steps);
        }
        let x = Tensor::randn(0f32, 1.0, (1, c, len), &dev)?;
        let one_by_one = time_per_call(|| {
            let mut sum: Option<Tensor> = None;
            for steps in &blocks {
                let mut y = x.clone();
                for conv in steps {
                    y = conv.forward(&y, 0.1, Some(&y))?;
                }
                sum = Some(match sum {
                    Some(s) => (s + y)?,
                    None => y,
                });
            }
            sum.map_or_else(|| Ok(x.clone()), |s| s / blocks.len() as f64)
        })?;
        let refs: Vec<Vec<_>> = blocks
            .iter()
            .map(|steps| steps.iter().map(|conv| (conv, None)).collect())
            .collect();
        let Some(stage) = MrfStage::new(&refs, c, 0.1) else {
            println!("{name:<34} {:>10.1} (no stage in cache)", 0.0);
            continue;
        };
        let in_cache = time_per_call(|| stage.forward(&x))?;
        let gflop = 2.0 * (c * c * 2 * (3 + 5 + 7) * len) as f64 / 1e9;
        println!(
            "{name:<34} {:>10.1} {:>10.1} {:>6.2}×",
            gflop / one_by_one,
            gflop / in_cache,
            one_by_one / in_cache
        );
    }
    Ok(())
}
