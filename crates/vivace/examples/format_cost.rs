//! What each streamed response format costs to encode, per second of
//! audio: a minute of a speech-like test signal (a voiced tone with a
//! syllable-rate envelope and noise) pushed sentence by sentence (3 s) at
//! the voices' rates, as the service encodes it.
//!
//!     cargo run --release -p vivace --example format_cost

use std::time::Instant;

use vivace::server::formats::{ResponseFormat, StreamEncoder};

fn main() -> Result<(), String> {
    for rate in [16_000u32, 22_050, 24_000] {
        let seconds = 60usize;
        let n = seconds * rate as usize;
        let mut state = 1u32;
        let signal: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                let envelope = (t * 4.0 * std::f32::consts::PI).sin().abs();
                envelope * (0.5 * (t * 2.0 * std::f32::consts::PI * 140.0).sin() + 0.1 * noise)
            })
            .collect();
        for format in [
            ResponseFormat::Mp3,
            ResponseFormat::Opus,
            ResponseFormat::Wav,
        ] {
            let start = Instant::now();
            let mut encoder = StreamEncoder::new(format, rate, format.output_rate(rate, None))?;
            let mut bytes = 0usize;
            for sentence in signal.chunks(3 * rate as usize) {
                bytes += encoder.push(sentence)?.len();
            }
            bytes += encoder.finish()?.len();
            let spent = start.elapsed().as_secs_f64();
            println!(
                "{rate} Hz {format:?}: {:.2} ms per second of audio, {:.1} kbit/s",
                spent * 1e3 / seconds as f64,
                bytes as f64 * 8.0 / seconds as f64 / 1e3
            );
        }
    }
    Ok(())
}
