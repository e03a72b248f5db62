//! Kokoro's decoder before its generator (`decoder.decoder`'s `F0_conv`,
//! `N_conv`, `asr_res`, `encode`, `decode`): F0 and energy brought back to
//! the frame rate by a stride-2 convolution, the aligned text features with
//! them through one AdaIN residual block to 1024 channels, then four more,
//! each fed the text's 64-channel residual, F0 and energy again, the last
//! doubling the frame rate into the generator's 512 channels.

use crate::error::Result;
use crate::nn::int8::QuantizedConv1d;
use crate::onnx::OnnxGraph;

use super::prosody::ResBlock;

/// The decoder's front.
pub struct DecoderFront {
    f0_conv: QuantizedConv1d,
    n_conv: QuantizedConv1d,
    asr_res: QuantizedConv1d,
    encode: ResBlock,
    decode: Vec<ResBlock>,
}

/// Rows of `C_k × T` stacked along the channels.
fn stack(parts: &[&[f32]]) -> Vec<f32> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

impl DecoderFront {
    /// Reads the front's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let conv = |node: &str, bias: &str| QuantizedConv1d::from_graph(graph, node, Some(bias));
        let block = |name: &str| {
            ResBlock::load(
                graph,
                &format!("/decoder/decoder/{name}"),
                &format!("decoder.decoder.{name}"),
            )
        };
        Ok(Self {
            f0_conv: conv(
                "/decoder/decoder/F0_conv/Conv_quant",
                "decoder.decoder.F0_conv.bias",
            )?,
            n_conv: conv(
                "/decoder/decoder/N_conv/Conv_quant",
                "decoder.decoder.N_conv.bias",
            )?,
            asr_res: conv(
                "/decoder/decoder/asr_res/asr_res.0/Conv_quant",
                "decoder.decoder.asr_res.0.bias",
            )?,
            encode: block("encode")?,
            decode: (0..4)
                .map(|i| block(&format!("decode.{i}")))
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// F0 or energy (`2·frames`) at the frame rate (`frames`).
    pub fn curve(&self, energy: bool, curve: &[f32]) -> Vec<f32> {
        if energy {
            self.n_conv.forward(curve)
        } else {
            self.f0_conv.forward(curve)
        }
    }

    /// The generator's input (`512 × 2·frames`) from the aligned text
    /// features `asr` (`512 × frames`), F0 and energy (`2·frames` each) and
    /// the decoder's style (the voice row's first half, 128).
    pub fn forward(&self, asr: &[f32], f0: &[f32], energy: &[f32], style: &[f32]) -> Vec<f32> {
        let f0 = self.curve(false, f0);
        let energy = self.curve(true, energy);
        let mut x = self.encode.forward(&stack(&[asr, &f0, &energy]), style);
        let residual = self.asr_res.forward(asr);
        for block in &self.decode {
            x = block.forward(&stack(&[&x, &residual, &f0, &energy]), style);
        }
        x
    }
}
