//! The HiFi-GAN decoder recorded as one CUDA graph (experimental: built
//! without a GPU, to be measured on one).
//!
//! candle issues one kernel per operation; a real-size MMS decoder is a few
//! hundred of them, and at batch 1 their launch cost can exceed the GPU's
//! work. A graph records the launches once for one input shape and replays
//! them with a single launch. The graph reads its input from a buffer
//! allocated before capture, into which each call copies its latents, and
//! writes into an output buffer allocated likewise.
//!
//! candle's host-to-device parameter uploads are cached by content while the
//! cache guard is held (`enable_cuda_graph_htod_cache`), so a warm-up run
//! before capture fills the cache and loads every kernel module, neither of
//! which is allowed while capturing.

use candle_core::{Result, Tensor};

use super::Vits;

/// The decoder of one model for one latent shape, as a CUDA graph.
pub struct DecoderGraph {
    /// The model whose weights the graph reads: held so they outlive it.
    _model: Vits,
    /// Latents `[b, flow_size, frames]` the graph reads.
    input: Tensor,
    /// Audio `[b, 1, samples]` the graph writes.
    output: Tensor,
    #[cfg(feature = "cuda")]
    graph: candle_core::cuda::cudarc::driver::CudaGraph,
}

impl DecoderGraph {
    /// Records `model`'s decoder (no speaker conditioning) for latents of
    /// `shape`. Needs a CUDA build and device; elsewhere it is an error.
    pub fn capture(model: &Vits, shape: (usize, usize, usize)) -> Result<Self> {
        #[cfg(feature = "cuda")]
        {
            capture_on_cuda(model, shape)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (model, shape);
            candle_core::bail!("CUDA graphs need a build with the cuda feature")
        }
    }

    /// Decodes `latents` (of the captured shape) by replaying the graph.
    /// The output is the graph's own buffer: the next replay overwrites it
    /// (copy it to keep it).
    pub fn run(&self, latents: &Tensor) -> Result<&Tensor> {
        if latents.dims() != self.input.dims() {
            candle_core::bail!(
                "latents {:?} do not have the captured shape {:?}",
                latents.dims(),
                self.input.dims()
            );
        }
        let latents = latents.to_dtype(self.input.dtype())?.contiguous()?;
        self.input.slice_set(&latents, 0, 0)?;
        self.launch()?;
        Ok(&self.output)
    }

    #[cfg(feature = "cuda")]
    fn launch(&self) -> Result<()> {
        self.graph
            .launch()
            .map_err(|e| candle_core::Error::Msg(format!("CUDA graph launch failed: {e:?}")))
    }

    #[cfg(not(feature = "cuda"))]
    fn launch(&self) -> Result<()> {
        candle_core::bail!("CUDA graphs need a build with the cuda feature")
    }
}

#[cfg(feature = "cuda")]
fn capture_on_cuda(model: &Vits, shape: (usize, usize, usize)) -> Result<DecoderGraph> {
    use candle_core::cuda::cudarc::driver::sys;
    use candle_core::Device;
    let Device::Cuda(cuda) = model.device() else {
        candle_core::bail!("CUDA graphs need a CUDA device")
    };
    let failed = |what: &str, e: &dyn std::fmt::Debug| {
        candle_core::Error::Msg(format!("CUDA graph {what} failed: {e:?}"))
    };
    let input = Tensor::zeros(shape, model.decoder_dtype(), model.device())?;
    let _cache = cuda.enable_cuda_graph_htod_cache();
    let warm = model.decode(&input, None)?;
    let output = warm.zeros_like()?;
    output.slice_set(&warm, 0, 0)?;
    drop(warm);
    model.device().synchronize()?;

    let stream = cuda.cuda_stream();
    stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(|e| failed("capture start", &e))?;
    let recorded = model
        .decode(&input, None)
        .and_then(|audio| output.slice_set(&audio, 0, 0));
    // The capture must end whatever happened inside it.
    let graph = stream.end_capture(
        sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH,
    );
    recorded?;
    let graph = graph
        .map_err(|e| failed("instantiation", &e))?
        .ok_or_else(|| candle_core::Error::Msg("the CUDA graph capture recorded nothing".into()))?;
    Ok(DecoderGraph {
        _model: model.clone(),
        input,
        output,
        graph,
    })
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;
    use crate::vits::{Vits, VitsConfig};

    /// Without CUDA, capture is a clear error, not a panic.
    #[test]
    fn capture_without_cuda_is_an_error() {
        let cfg: VitsConfig = serde_json::from_str(include_str!(
            "../../../vivace/tests/fixtures/mms/tiny-sdp/config.json"
        ))
        .expect("config");
        let vb = candle_nn::VarBuilder::zeros(candle_core::DType::F32, &candle_core::Device::Cpu);
        let model = Vits::new(&cfg, vb).expect("model");
        let err = DecoderGraph::capture(&model, (1, cfg.flow_size, 4))
            .err()
            .expect("no CUDA here");
        assert!(err.to_string().contains("cuda feature"), "{err}");
    }
}
