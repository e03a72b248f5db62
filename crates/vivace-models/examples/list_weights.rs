//! Prints every weight of an ONNX voice with its shape, and the node attributes.
//! Usage: cargo run -p vivace-models --example list_weights -- VOICE.onnx
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: list_weights VOICE.onnx")?;
    let w = vivace_models::onnx::OnnxWeights::read(
        std::path::Path::new(&path),
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )?;
    let mut names: Vec<_> = w.tensors.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, t) in names {
        println!("{name}\t{:?}", t.dims());
    }
    let mut nodes: Vec<_> = w.nodes.iter().collect();
    nodes.sort_by(|a, b| a.0.cmp(b.0));
    for (name, a) in nodes {
        println!("node {name}\t{}\t{:?}", a.op_type, a.ints);
    }
    println!("opset {}", w.opset);
    Ok(())
}
