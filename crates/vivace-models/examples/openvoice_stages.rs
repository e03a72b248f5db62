//! Times OpenVoice's tone-colour converter stage by stage on a recording:
//! the linear spectrogram, the reference encoder (`extract_se`), and the
//! four stages of `convert` (posterior encoder, flow forward, flow reverse,
//! decoder), with each stage's counted multiply-adds per second of audio.
//! Median of ROUNDS runs after one warm-up.
//!
//! Usage: cargo run --release -p vivace-models --example openvoice_stages -- CONVERTER_DIR SOURCE.wav [ROUNDS]

use std::path::Path;
use std::time::{Duration, Instant};

use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::openvoice::{ConverterConfig, ToneColorConverter};

/// FLOPs (2 per multiply-add) per latent frame of each stage of `convert`.
fn flops_per_frame(cfg: &ConverterConfig) -> [f64; 4] {
    let m = &cfg.model;
    let (h, inter, bins) = (
        m.hidden_channels as f64,
        m.inter_channels as f64,
        cfg.bins() as f64,
    );
    // A WaveNet layer: the k = 5 gated convolution h → 2h and the 1×1 h → 2h.
    let wavenet_layer = 2.0 * h * 2.0 * h * 5.0 + 2.0 * h * 2.0 * h;
    let enc_q = 2.0 * bins * h + 16.0 * wavenet_layer + 2.0 * h * 2.0 * inter;
    let coupling = 2.0 * (inter / 2.0) * h * 2.0 + 4.0 * wavenet_layer;
    let flow = 4.0 * coupling;
    let mut channels = m.upsample_initial_channel as f64;
    let mut samples = 1.0;
    let mut dec = 2.0 * inter * channels * 7.0;
    for (&rate, &kernel) in m.upsample_rates.iter().zip(&m.upsample_kernel_sizes) {
        let out = channels / 2.0;
        dec += samples * 2.0 * channels * out * kernel as f64;
        samples *= rate as f64;
        channels = out;
        let per_sample: f64 = m
            .resblock_kernel_sizes
            .iter()
            .map(|&k| 6.0 * 2.0 * channels * channels * k as f64)
            .sum();
        dec += samples * per_sample;
    }
    dec += samples * 2.0 * channels * 7.0;
    [enc_q, flow, flow, dec]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(wav)) = (args.next(), args.next()) else {
        return Err("usage: openvoice_stages CONVERTER_DIR SOURCE.wav [ROUNDS]".into());
    };
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let dir = Path::new(&dir);
    let converter = ToneColorConverter::load(
        &dir.join("checkpoint.pth"),
        &dir.join("config.json"),
        &candle_core::Device::Cpu,
    )?;
    let cfg = converter.config().clone();
    let recording = read_wav(Path::new(&wav))?;
    if recording.sample_rate != cfg.data.sampling_rate {
        return Err(format!("give a {} Hz recording", cfg.data.sampling_rate).into());
    }
    let spectrogram = MelSpectrogram::vits_linear(cfg.data.filter_length, cfg.data.hop_length);
    let audio_s = recording.samples.len() as f64 / f64::from(cfg.data.sampling_rate);
    let mut spec_t = Vec::new();
    let mut embed_t = Vec::new();
    let mut stage_t: [Vec<Duration>; 4] = Default::default();
    for round in 0..=rounds {
        let t = Instant::now();
        let spec = spectrogram
            .try_compute(&recording.samples)
            .ok_or("recording too short")?;
        let t_spec = t.elapsed();
        let t = Instant::now();
        let se = converter.embedding(&spec)?;
        let t_embed = t.elapsed();
        let stages = converter.stages(&spec, &se, &se, None)?;
        if round > 0 {
            spec_t.push(t_spec);
            embed_t.push(t_embed);
            for (all, one) in stage_t.iter_mut().zip(stages.times) {
                all.push(one);
            }
        }
    }
    let frames_per_s = f64::from(cfg.data.sampling_rate) / cfg.data.hop_length as f64;
    let flops = flops_per_frame(&cfg);
    println!(
        "{audio_s:.2} s of audio; medians of {rounds}; spectrogram {:.1} ms, reference encoder {:.1} ms",
        median(spec_t).as_secs_f64() * 1e3,
        median(embed_t).as_secs_f64() * 1e3
    );
    let mut total = 0.0;
    for (i, name) in [
        "posterior encoder",
        "flow forward",
        "flow reverse",
        "decoder",
    ]
    .iter()
    .enumerate()
    {
        let s = median(stage_t[i].clone()).as_secs_f64();
        total += s;
        let gflop = flops[i] * frames_per_s / 1e9;
        println!(
            "{name:>18}: {:7.1} ms per s of audio, {gflop:6.2} GFLOP per s of audio, {:6.1} GFLOP/s",
            s / audio_s * 1e3,
            gflop * audio_s / s
        );
    }
    let gflop: f64 = flops.iter().sum::<f64>() * frames_per_s / 1e9;
    println!(
        "{:>18}: {:7.1} ms per s of audio, {gflop:6.2} GFLOP per s of audio, {:6.1} GFLOP/s",
        "convert",
        total / audio_s * 1e3,
        gflop * audio_s / total
    );
    Ok(())
}
