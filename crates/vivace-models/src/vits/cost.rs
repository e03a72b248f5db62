//! Counting the work: multiply-adds per stage, from the configuration.
//!
//! Direct-convolution counts (what an im2col + GEMM or a direct kernel
//! executes), per token for the text side and per latent frame for the
//! acoustic side, so `vivace bench --count` can state the floor a machine's
//! GEMM peak allows before any optimization is judged.

use super::{ResBlockKind, VitsConfig};

/// Multiply-adds of one utterance, per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageMacs {
    /// Text encoder (projections, attention, feed-forward, output projection).
    pub text_encoder: f64,
    /// Duration predictor.
    pub duration_predictor: f64,
    /// Normalizing flow.
    pub flow: f64,
    /// HiFi-GAN decoder.
    pub decoder: f64,
}

impl StageMacs {
    /// Sum of the stages.
    pub fn total(&self) -> f64 {
        self.text_encoder + self.duration_predictor + self.flow + self.decoder
    }
}

impl VitsConfig {
    /// Multiply-adds to synthesize `tokens` ids into `frames` latent frames.
    pub fn macs(&self, tokens: usize, frames: usize) -> StageMacs {
        let (t, f) = (tokens as f64, frames as f64);
        let h = self.hidden_size as f64;

        // Text encoder, per layer and token: q/k/v/o 1×1 convolutions, scores
        // and weighted values over `t` keys, the relative terms over 2t−1
        // offsets, and the two feed-forward convolutions.
        let per_layer = 4.0 * h * h
            + 2.0 * t * h
            + 2.0 * (2.0 * t - 1.0) * h
            + 2.0 * h * self.ffn_dim as f64 * self.ffn_kernel_size as f64;
        let text_encoder =
            t * (self.num_hidden_layers as f64 * per_layer + h * 2.0 * self.flow_size as f64);

        // Duration predictor, per token.
        let c = self.duration_predictor_filter_channels as f64;
        let k = self.duration_predictor_kernel_size as f64;
        let dds = self.depth_separable_num_layers as f64 * (c * k + c * c);
        let per_token = if self.use_stochastic_duration_prediction {
            let flows = self.duration_predictor_num_flows.saturating_sub(1) as f64;
            let spline_params = (3 * self.duration_predictor_flow_bins - 1) as f64;
            h * c + dds + c * c + flows * (c + dds + c * spline_params)
        } else {
            h * c * k + c * c * k + c
        };
        let duration_predictor = t * per_token;

        // Flow, per frame: each coupling's pre, WaveNet layers and post.
        let half = self.flow_size as f64 / 2.0;
        let layers = self.prior_encoder_num_wavenet_layers as f64;
        let wavenet = layers * h * 2.0 * h * self.wavenet_kernel_size as f64
            + (layers - 1.0).max(0.0) * h * 2.0 * h
            + h * h;
        let flow = f * self.prior_encoder_num_flows as f64 * (half * h + wavenet + h * half);

        // Decoder: conv_pre per frame, then per stage the transposed
        // convolution (per input sample) and the residual blocks (per output
        // sample), then conv_post per output sample.
        let mut channels = self.upsample_initial_channel as f64;
        let mut rate = f;
        let mut decoder = f * self.flow_size as f64 * channels * 7.0;
        let convs_per_dilation = match self.resblock {
            ResBlockKind::One => 2.0,
            ResBlockKind::Two => 1.0,
        };
        for (&stride, &kernel) in self.upsample_rates.iter().zip(&self.upsample_kernel_sizes) {
            let out = channels / 2.0;
            decoder += rate * channels * out * kernel as f64;
            rate *= stride as f64;
            channels = out;
            for (&k, dilations) in self
                .resblock_kernel_sizes
                .iter()
                .zip(&self.resblock_dilation_sizes)
            {
                decoder += rate
                    * channels
                    * channels
                    * k as f64
                    * convs_per_dilation
                    * dilations.len() as f64;
            }
        }
        decoder += rate * channels * 7.0;

        StageMacs {
            text_encoder,
            duration_predictor,
            flow,
            decoder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder small enough to count by hand.
    #[test]
    fn decoder_count_by_hand() {
        let cfg = VitsConfig {
            vocab_size: 10,
            hidden_size: 4,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            window_size: 1,
            ffn_dim: 8,
            ffn_kernel_size: 3,
            flow_size: 2,
            use_stochastic_duration_prediction: false,
            duration_predictor_filter_channels: 4,
            duration_predictor_kernel_size: 3,
            depth_separable_num_layers: 0,
            duration_predictor_flow_bins: 10,
            duration_predictor_tail_bound: 5.0,
            duration_predictor_num_flows: 4,
            prior_encoder_num_flows: 1,
            prior_encoder_num_wavenet_layers: 1,
            wavenet_kernel_size: 5,
            wavenet_dilation_rate: 1,
            upsample_initial_channel: 8,
            upsample_rates: vec![2],
            upsample_kernel_sizes: vec![4],
            resblock_kernel_sizes: vec![3],
            resblock_dilation_sizes: vec![vec![1, 2]],
            resblock: ResBlockKind::Two,
            num_speakers: 1,
            speaker_embedding_size: 0,
            layer_norm_eps: 1e-5,
            use_bias: true,
            sampling_rate: 16000,
        };
        // 10 frames: conv_pre 10·2·8·7 = 1120; ups 10·8·4·4 = 1280;
        // resblocks at 20 samples: 20·4·4·3·1·2 = 1920; conv_post 20·4·7 = 560.
        assert_eq!(cfg.macs(5, 10).decoder, 1120.0 + 1280.0 + 1920.0 + 560.0);
        // Flow: 10 frames · (pre 1·4 + WN 4·8·5 + 4·4 + post 4·1) = 10 · 184.
        assert_eq!(cfg.macs(5, 10).flow, 1840.0);
    }
}
