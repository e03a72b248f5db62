//! Any fixed-shape module recorded as one CUDA graph (experimental: built
//! without a GPU, to be measured on one).
//!
//! candle issues one kernel per operation; a real-size MMS decoder is a few
//! hundred of them (an LLM layer stack or a flow-matching step as many), and at batch 1 their launch cost can exceed the GPU's
//! work. A graph records the launches once for one input shape and replays
//! them with a single launch. The graph reads its input from a buffer
//! allocated before capture, into which each call copies its latents, and
//! writes into an output buffer allocated likewise.
//!
//! candle's host-to-device parameter uploads are cached by content while the
//! cache guard is held (`enable_cuda_graph_htod_cache`), so a warm-up run
//! before capture fills the cache and loads every kernel module, neither of
//! which is allowed while capturing.

use candle_core::{DType, Device, Module, Result, Tensor};

/// One module recorded for one input shape, replayed with one launch.
pub struct CapturedGraph<M> {
    /// The module whose weights the graph reads: held so they outlive it.
    _module: M,
    /// The input buffer the graph reads.
    input: Tensor,
    /// The output buffer the graph writes.
    output: Tensor,
    #[cfg(feature = "cuda")]
    graph: candle_core::cuda::cudarc::driver::CudaGraph,
}

impl<M: Module> CapturedGraph<M> {
    /// Records `module` for inputs of `shape` in `dtype` on `device`. Needs
    /// a CUDA build and device; elsewhere it is an error.
    pub fn capture(module: M, shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        #[cfg(feature = "cuda")]
        {
            capture_on_cuda(module, shape, dtype, device)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (module, shape, dtype, device);
            candle_core::bail!("CUDA graphs need a build with the cuda feature")
        }
    }

    /// Runs the module on `input` (of the captured shape) by replaying the
    /// graph. The output is the graph's own buffer: the next replay
    /// overwrites it (copy it to keep it).
    pub fn run(&self, input: &Tensor) -> Result<&Tensor> {
        if input.dims() != self.input.dims() {
            candle_core::bail!(
                "input {:?} does not have the captured shape {:?}",
                input.dims(),
                self.input.dims()
            );
        }
        let input = input.to_dtype(self.input.dtype())?.contiguous()?;
        self.input.slice_set(&input, 0, 0)?;
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
fn capture_on_cuda<M: Module>(
    module: M,
    shape: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<CapturedGraph<M>> {
    use candle_core::cuda::cudarc::driver::sys;
    let Device::Cuda(cuda) = device else {
        candle_core::bail!("CUDA graphs need a CUDA device")
    };
    let failed = |what: &str, e: &dyn std::fmt::Debug| {
        candle_core::Error::Msg(format!("CUDA graph {what} failed: {e:?}"))
    };
    let input = Tensor::zeros(shape, dtype, device)?;
    let _cache = cuda.enable_cuda_graph_htod_cache();
    let warm = module.forward(&input)?;
    let output = warm.zeros_like()?;
    output.slice_set(&warm, 0, 0)?;
    drop(warm);
    device.synchronize()?;

    let stream = cuda.cuda_stream();
    stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .map_err(|e| failed("capture start", &e))?;
    let recorded = module
        .forward(&input)
        .and_then(|out| output.slice_set(&out, 0, 0));
    // The capture must end whatever happened inside it.
    let graph = stream.end_capture(
        sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH,
    );
    recorded?;
    let graph = graph
        .map_err(|e| failed("instantiation", &e))?
        .ok_or_else(|| candle_core::Error::Msg("the CUDA graph capture recorded nothing".into()))?;
    Ok(CapturedGraph {
        _module: module,
        input,
        output,
        graph,
    })
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;

    /// Without CUDA, capture is a clear error, not a panic.
    #[test]
    fn capture_without_cuda_is_an_error() {
        let module = candle_nn::Activation::Relu;
        let err = CapturedGraph::capture(module, &[1, 4], DType::F32, &Device::Cpu)
            .err()
            .expect("no CUDA here");
        assert!(err.to_string().contains("cuda feature"), "{err}");
    }
}
