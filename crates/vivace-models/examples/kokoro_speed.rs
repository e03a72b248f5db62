//! Times Kokoro-82M from its int8 export on the stage goldens' tokens
//! (`crates/vivace/tests/fixtures/kokoro/stages.json`, style `style.f32`):
//! the load, and the median synthesis of ROUNDS, with the real-time factor.
//! `bench/kokoro_peer.py` times onnxruntime on the same input.
//!
//!     cargo run --release -p vivace-models --example kokoro_speed -- \
//!         ~/.cache/vivace/weights/kokoro-v1.0-int8/kokoro-v1.0.int8.onnx \
//!         crates/vivace/tests/fixtures/kokoro [ROUNDS]

use std::time::Instant;

use vivace_models::kokoro::model::Kokoro;
use vivace_models::onnx::OnnxGraph;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: kokoro_speed MODEL.onnx FIXTURES_DIR [ROUNDS]";
    let model = args.next().ok_or(usage)?;
    let fixtures = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("stages.json"))?)?;
    let tokens: Vec<i64> = serde_json::from_value(meta["tokens"].clone())?;
    let style: Vec<f32> = std::fs::read(fixtures.join("style.f32"))?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let start = Instant::now();
    let graph = OnnxGraph::read(std::path::Path::new(&model))?;
    let read = start.elapsed().as_secs_f64();
    let kokoro = Kokoro::load(&graph)?;
    let load = start.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut samples = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        samples = kokoro.synthesize(&tokens, &style, 1.0).audio.len();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let seconds = samples as f64 / 24_000.0;
    println!(
        "{{\"read_s\": {read:.3}, \"load_s\": {load:.3}, \"audio_s\": {seconds:.3}, \"median_s\": {median:.3}, \"rtf\": {:.3}}}",
        median / seconds
    );
    Ok(())
}
