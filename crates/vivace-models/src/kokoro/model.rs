//! The whole of Kokoro-82M: tokens and a voice's style row to 24 kHz audio,
//! each stage in the export's own arithmetic.

use crate::error::Result;
use crate::onnx::OnnxGraph;

use super::albert::Albert;
use super::decoder::DecoderFront;
use super::duration::DurationPredictor;
use super::generator::Generator;
use super::prosody::{expand, ProsodyPredictor};
use super::text_encoder::{transpose, TextEncoder};

/// A voice row's width: the decoder's style, then the predictor's.
pub const STYLE_WIDTH: usize = 256;

/// Kokoro-82M read from its int8 export.
pub struct Kokoro {
    albert: Albert,
    durations: DurationPredictor,
    prosody: ProsodyPredictor,
    text_encoder: TextEncoder,
    decoder: DecoderFront,
    generator: Generator,
}

/// What one synthesis produced, for inspection and tests.
pub struct Synthesis {
    /// Frames per token.
    pub durations: Vec<usize>,
    /// 24 kHz samples.
    pub audio: Vec<f32>,
}

impl Kokoro {
    /// Reads every stage's weights from the export's graph, the stages on
    /// rayon's pool (converting and packing the weights is most of a load).
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let ((albert, durations), ((prosody, text_encoder), (decoder, generator))) = rayon::join(
            || rayon::join(|| Albert::load(graph), || DurationPredictor::load(graph)),
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || ProsodyPredictor::load(graph),
                            || TextEncoder::load(graph),
                        )
                    },
                    || rayon::join(|| DecoderFront::load(graph), || Generator::load(graph)),
                )
            },
        );
        Ok(Self {
            albert: albert?,
            durations: durations?,
            prosody: prosody?,
            text_encoder: text_encoder?,
            decoder: decoder?,
            generator: generator?,
        })
    }

    /// How many token ids the model embeds (ids from 0 to this less one).
    pub fn vocab_size(&self) -> usize {
        self.albert.vocab_size()
    }

    /// `tokens` (with the pad 0 at both ends) in the voice `style` (a
    /// 256-wide row of its pack) at `speed` (1 is the voice's own).
    pub fn synthesize(&self, tokens: &[i64], style: &[f32], speed: f32) -> Synthesis {
        let (decoder_style, predictor_style) = style.split_at(STYLE_WIDTH / 2);
        let bert_dur = self.albert.forward(tokens);
        let d = self.durations.encode(&bert_dur, predictor_style);
        let raw = self
            .durations
            .raw_durations(&self.durations.bins(&d), speed);
        let durations = DurationPredictor::durations(&raw);
        let t = tokens.len();
        let width = d.len() / t.max(1);
        let en = expand(&transpose(&d, t, width), width, &durations);
        let (f0, energy) = self.prosody.forward(&en, predictor_style);
        let text = self.text_encoder.forward(tokens);
        let asr = expand(&text, text.len() / t.max(1), &durations);
        let x = self.decoder.forward(&asr, &f0, &energy, decoder_style);
        let audio = self.generator.forward(&x, &f0, decoder_style);
        Synthesis { durations, audio }
    }
}
