fn main() -> Result<(), Box<dyn std::error::Error>> {
    let onnx = std::env::args().nth(1).ok_or("usage: parity VOICE.onnx")?;
    let voice = vivace_models::piper::PiperVoice::load(
        std::path::Path::new(&onnx),
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )?;
    println!("{:?}", voice.model.config());
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("piper_goldens.json"))?)?;
    for case in g["cases"].as_array().unwrap() {
        for s in case["sentences"].as_array().unwrap() {
            let ids: Vec<i64> = s["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            for r in s["renders"].as_array().unwrap() {
                let bytes = std::fs::read(fx.join(r["file"].as_str().unwrap()))?;
                let gold: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let p = vivace_models::vits::SynthesisParams {
                    noise_scale: 0.0,
                    length_scale: r["length_scale"].as_f64().unwrap(),
                    noise_w: 0.0,
                    speaker: None,
                };
                let t = std::time::Instant::now();
                let out = voice.model.synthesize(&ids, &p)?;
                let dt = t.elapsed().as_secs_f64();
                let n = out.len().min(gold.len());
                let num: f64 = (0..n).map(|i| ((out[i] - gold[i]) as f64).powi(2)).sum();
                let den: f64 = gold.iter().map(|&v| (v as f64).powi(2)).sum();
                println!(
                    "{} len {} vs {} rel_l2 {:.3e} time {:.3}s rtf {:.3}",
                    r["file"],
                    out.len(),
                    gold.len(),
                    (num / den).sqrt(),
                    dt,
                    dt / (out.len() as f64 / 22050.0)
                );
            }
        }
    }
    Ok(())
}
