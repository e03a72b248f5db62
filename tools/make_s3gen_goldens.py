#!/usr/bin/env python3
"""Goldens for Chatterbox's S3Gen (speech tokens + reference prompt -> 24 kHz
audio), from the reference implementation `chatterbox-tts==0.1.7` on random
weights.

The model is S3Gen's own classes (`CausalMaskedDiffWithXvec`,
`UpsampleConformerEncoder`, `CausalConditionalCFM`, `ConditionalDecoder`,
`HiFTGenerator`, `ConvRNNF0Predictor`) at small widths, so the fixture stays a
few MB; its sizes go to `config.json`, which the Rust test reads. Every
parameter (layer norms, Snake alphas, weight-norm gains too) is perturbed so a
wrong affine or gain cannot pass. The state dict is saved under the names the
published `s3gen.safetensors` uses (`flow.*`, `mel2wav.*`).

Also writes `conds.pt` in the layout of Chatterbox's built-in voice file
(`{"t3": …, "gen": {prompt_token, prompt_token_len, prompt_feat,
prompt_feat_len, embedding}}`), holding the goldens' prompt.

Randomness is injected: the flow's starting noise is `noise` (saved), and the
vocoder's sine phase and noise are zero (`--vocoder-noise 0` in Vivace).

Setup (a throwaway venv; see ../shared/notes/chatterbox.md):

    python3 -m venv /tmp/cbenv
    /tmp/cbenv/bin/pip install torch transformers numpy scipy librosa safetensors soundfile
    /tmp/cbenv/bin/pip install --no-deps chatterbox-tts==0.1.7 diffusers==0.29.0 \\
        conformer==0.3.2 s3tokenizer onnx torchaudio omegaconf pyloudnorm \\
        resemble-perth einops pillow "setuptools<81"

Run from the repository root:

    /tmp/cbenv/bin/python tools/make_s3gen_goldens.py            # the committed fixture
    /tmp/cbenv/bin/python tools/make_s3gen_goldens.py --real-size --out /tmp/s3gen-real
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from chatterbox.models.s3gen import hifigan as hift_module
from chatterbox.models.s3gen.decoder import ConditionalDecoder
from chatterbox.models.s3gen.f0_predictor import ConvRNNF0Predictor
from chatterbox.models.s3gen.flow import CausalMaskedDiffWithXvec
from chatterbox.models.s3gen.flow_matching import CausalConditionalCFM
from chatterbox.models.s3gen.hifigan import HiFTGenerator
from chatterbox.models.s3gen.transformer.upsample_encoder import (
    PreLookaheadLayer,
    Upsample1D,
    UpsampleConformerEncoder,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "s3gen"

SMALL = {
    "vocab_size": 300,
    "encoder_width": 32,
    "encoder_heads": 2,
    "encoder_linear_units": 64,
    "encoder_blocks": 2,
    "encoder_up_blocks": 2,
    "decoder_channels": 32,
    "decoder_heads": 2,
    "decoder_head_dim": 16,
    "decoder_blocks_per_stage": 1,
    "decoder_mid_blocks": 2,
    "hift_base_channels": 32,
    "f0_channels": 16,
}
REAL = {
    "vocab_size": 6561,
    "encoder_width": 512,
    "encoder_heads": 8,
    "encoder_linear_units": 2048,
    "encoder_blocks": 6,
    "encoder_up_blocks": 4,
    "decoder_channels": 256,
    "decoder_heads": 8,
    "decoder_head_dim": 64,
    "decoder_blocks_per_stage": 4,
    "decoder_mid_blocks": 12,
    "hift_base_channels": 512,
    "f0_channels": 512,
}


class Model(torch.nn.Module):
    """`S3Token2Wav` without the tokenizer and speaker encoder: the same
    attribute names (`flow`, `mel2wav`), so the state dict keys match."""

    def __init__(self, cfg: dict, meanflow: bool):
        super().__init__()
        w = cfg["encoder_width"]
        encoder = UpsampleConformerEncoder(
            output_size=w,
            attention_heads=cfg["encoder_heads"],
            linear_units=cfg["encoder_linear_units"],
            num_blocks=cfg["encoder_blocks"],
            dropout_rate=0.1,
            positional_dropout_rate=0.1,
            attention_dropout_rate=0.1,
            normalize_before=True,
            input_layer="linear",
            pos_enc_layer_type="rel_pos_espnet",
            selfattention_layer_type="rel_selfattn",
            input_size=w,
            use_cnn_module=False,
            macaron_style=False,
        )
        # Hard-coded to 512 wide in the reference; the same classes at our width.
        encoder.pre_lookahead_layer = PreLookaheadLayer(channels=w, pre_lookahead_len=3)
        encoder.up_layer = Upsample1D(channels=w, out_channels=w, stride=2)
        del encoder.up_encoders[cfg["encoder_up_blocks"]:]
        estimator = ConditionalDecoder(
            in_channels=320,
            out_channels=80,
            causal=True,
            channels=[cfg["decoder_channels"]],
            dropout=0.0,
            attention_head_dim=cfg["decoder_head_dim"],
            n_blocks=cfg["decoder_blocks_per_stage"],
            num_mid_blocks=cfg["decoder_mid_blocks"],
            num_heads=cfg["decoder_heads"],
            act_fn="gelu",
            meanflow=meanflow,
        )
        decoder = CausalConditionalCFM(spk_emb_dim=80, estimator=estimator)
        self.flow = CausalMaskedDiffWithXvec(
            input_size=w, vocab_size=cfg["vocab_size"], encoder=encoder, decoder=decoder
        )
        self.mel2wav = HiFTGenerator(
            sampling_rate=24000,
            base_channels=cfg["hift_base_channels"],
            upsample_rates=[8, 5, 3],
            upsample_kernel_sizes=[16, 11, 7],
            source_resblock_kernel_sizes=[7, 7, 11],
            source_resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            f0_predictor=ConvRNNF0Predictor(cond_channels=cfg["f0_channels"]),
        )
        n_trim = 24000 // 50
        trim_fade = torch.zeros(2 * n_trim)
        trim_fade[n_trim:] = (torch.cos(torch.linspace(torch.pi, 0, n_trim)) + 1) / 2
        self.register_buffer("trim_fade", trim_fade, persistent=False)


def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Moves every parameter off its initial value (norms of 1, biases of 0,
    Snake alphas of 1, weight-norm gains equal to the norms)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() <= 1 or "original0" in name:
                p.add_(0.1 * noise)
            else:
                p.mul_(1.0 + 0.1 * noise)


def speech_like_f0(predictor: ConvRNNF0Predictor, mel: torch.Tensor) -> None:
    """Rescales the F0 classifier so that on `mel` it predicts a speech-like
    F0 (about 40 ± 100 Hz before the absolute value): random weights give
    F0s under 1 Hz, all below the 10 Hz voicing threshold, which would leave
    the sine source untested. Some frames stay under 10 Hz (unvoiced)."""
    with torch.no_grad():
        raw = predictor.classifier(predictor.condnet(mel).transpose(1, 2)).squeeze(-1)
        scale = 100.0 / raw.std().clamp(min=1e-6)
        predictor.classifier.weight.mul_(scale)
        predictor.classifier.bias.mul_(scale)
        shift = 40.0 - (raw * scale).mean()
        predictor.classifier.bias.add_(shift)


class Recorder:
    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {}

    def hook(self, name: str):
        def fn(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            self.values.setdefault(name, []).append(out.detach().clone())

        return fn


def run(cfg: dict, meanflow: bool, out: Path, prompt_tokens: int, tokens: int, seed: int, real_size: bool) -> None:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = Model(cfg, meanflow).eval()
    perturb(model, gen)
    flow = model.flow

    prompt_token = torch.randint(0, cfg["vocab_size"], (1, prompt_tokens), generator=gen)
    prompt_feat = torch.randn(1, 2 * prompt_tokens, 80, generator=gen) * 2.0 - 6.0
    embedding = torch.randn(1, 192, generator=gen)
    speech_tokens = torch.randint(0, cfg["vocab_size"], (1, tokens), generator=gen)
    frames = 2 * (prompt_tokens + tokens)
    noise = torch.randn(1, 80, frames, generator=gen)
    steps = 2 if meanflow else 10

    rec = Recorder()
    flow.encoder.register_forward_hook(rec.hook("encoder"))
    flow.encoder_proj.register_forward_hook(rec.hook("mu"))
    # The CFM calls `estimator.forward` directly, which skips hooks.
    estimator = flow.decoder.estimator
    plain_forward = estimator.forward

    def recorded_forward(*args, **kwargs):
        out = plain_forward(*args, **kwargs)
        rec.values.setdefault("estimator", []).append(out.detach().clone())
        return out

    estimator.forward = recorded_forward
    model.mel2wav.f0_predictor.register_forward_hook(rec.hook("f0"))

    real_randn_like = torch.randn_like
    with torch.inference_mode():
        torch.randn_like = lambda x, **kw: noise.clone().to(x.dtype)
        try:
            mel, _ = flow.inference(
                token=speech_tokens,
                token_len=torch.tensor([tokens]),
                prompt_token=prompt_token,
                prompt_token_len=torch.tensor([prompt_tokens]),
                prompt_feat=prompt_feat,
                prompt_feat_len=None,
                embedding=embedding,
                finalize=True,
                n_timesteps=steps,
                noised_mels=noise[:, :, 2 * prompt_tokens:] if meanflow else None,
                meanflow=meanflow,
            )
        finally:
            torch.randn_like = real_randn_like

        speech_like_f0(model.mel2wav.f0_predictor, mel)

        # The vocoder with its noise off: zero sine phases, zero noise.
        real_sample = hift_module.Uniform.sample
        torch.randn_like = lambda x, **kw: torch.zeros_like(x)
        hift_module.Uniform.sample = lambda self, sample_shape=torch.Size(): torch.zeros(sample_shape)
        try:
            wav, source = model.mel2wav.inference(speech_feat=mel, cache_source=torch.zeros(1, 1, 0))
        finally:
            torch.randn_like = real_randn_like
            hift_module.Uniform.sample = real_sample
        raw_wav = wav.clone()
        wav[:, : len(model.trim_fade)] *= model.trim_fade

    # Euler states, step by step, from the estimator outputs (CFG as the reference does it).
    t_span = torch.linspace(0, 1, steps + 1)
    if not meanflow:
        t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
    x = noise.clone()
    states = []
    for k, d in enumerate(rec.values["estimator"]):
        if not meanflow:
            d = (1.0 + 0.7) * d[:1] - 0.7 * d[1:]
        x = x + (t_span[k + 1] - t_span[k]) * d
        states.append(x[0].clone())
    final_check = (x[0, :, 2 * prompt_tokens:] - mel[0]).abs().max().item()
    assert final_check < 1e-4, f"step replay disagrees with the flow output by {final_check}"

    out.mkdir(parents=True, exist_ok=True)
    name = "s3gen_meanflow" if meanflow else "s3gen"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / f"{name}.safetensors"))
    if not meanflow and not real_size:
        # Multilingual publishes S3Gen as a torch zip (`s3gen.pt`).
        torch.save(state, out / "s3gen.pt")
    goldens = {
        "prompt_token": prompt_token[0].to(torch.int64),
        "prompt_feat": prompt_feat[0],
        "embedding": embedding[0],
        "speech_tokens": speech_tokens[0].to(torch.int64),
        "noise": noise[0],
        "encoder": rec.values["encoder"][0][0],
        "mu": rec.values["mu"][0][0],
        "estimator_first": rec.values["estimator"][0],
        "euler_states": torch.stack(states),
        "mel": mel[0],
        "f0": rec.values["f0"][0][0],
        "source": source[0, 0],
        "raw_wav": raw_wav[0],
        "wav": wav[0],
    }
    save_file({k: v.contiguous() for k, v in goldens.items()}, str(out / f"{name}_goldens.safetensors"))
    if not meanflow and not real_size:
        # The built-in voice file's layout (`Conditionals.save` in tts.py):
        # T3's conditioning and S3Gen's prompt (`embed_ref`'s dict).
        conds = {
            "t3": {
                "speaker_emb": torch.randn(1, 256, generator=gen),
                "clap_emb": None,
                "cond_prompt_speech_tokens": torch.randint(0, 6561, (1, 150), generator=gen),
                "cond_prompt_speech_emb": None,
                "emotion_adv": 0.5 * torch.ones(1, 1, 1),
            },
            "gen": {
                "prompt_token": prompt_token.to(torch.int64),
                "prompt_token_len": torch.tensor([prompt_tokens]),
                "prompt_feat": prompt_feat,
                "prompt_feat_len": None,
                "embedding": embedding,
            },
        }
        torch.save(conds, out / "conds.pt")
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params / 1e6:.2f} M parameters, {frames} frames, wav {wav.shape[-1]} samples")


MEL_FIXTURE = ROOT / "crates" / "vivace-frontend" / "tests" / "fixtures" / "s3gen_mel"


def mel_goldens(out: Path) -> None:
    """S3Gen's 24 kHz mel (`utils/mel.py`) of a chirp with noise whose
    length is not a multiple of the hop: raw little-endian f32, the input
    and the `[frames, 80]` log-mel."""
    from chatterbox.models.s3gen.utils.mel import mel_spectrogram

    gen = torch.Generator().manual_seed(21)
    n = 28_811
    t = torch.arange(n, dtype=torch.float64) / 24000
    chirp = 0.5 * torch.sin(2 * torch.pi * (120 * t + 1500 * t * t))
    wav = (chirp + 0.05 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    mel = mel_spectrogram(wav[None])[0].T.contiguous()
    out.mkdir(parents=True, exist_ok=True)
    wav.numpy().astype("<f4").tofile(out / "input.f32")
    mel.numpy().astype("<f4").tofile(out / "mel.f32")
    print(f"mel: {n} samples -> {mel.shape[0]} frames")

    # The S3 tokenizer's log-mel (16 kHz, 128 bands), from its own method.
    from chatterbox.models.s3tokenizer import S3Tokenizer

    n16 = 20_917
    t = torch.arange(n16, dtype=torch.float64) / 16000
    wav16 = (0.4 * torch.sin(2 * torch.pi * (90 * t + 1200 * t * t))
             + 0.03 * torch.randn(n16, generator=gen, dtype=torch.float64)).float()
    tok_mel = S3Tokenizer().log_mel_spectrogram(wav16[None])[0].T.contiguous()
    wav16.numpy().astype("<f4").tofile(out / "tokenizer_input.f32")
    tok_mel.numpy().astype("<f4").tofile(out / "tokenizer_mel.f32")
    print(f"tokenizer mel: {n16} samples -> {tok_mel.shape[0]} frames")


FBANK_FIXTURE = ROOT / "crates" / "vivace-frontend" / "tests" / "fixtures" / "kaldi_fbank"


def fbank_goldens(out: Path) -> None:
    """CAMPPlus's input (`xvector.extract_feature`): Kaldi fbank, 80 bands,
    of a 16 kHz chirp with noise, and its per-band mean subtracted."""
    import torchaudio.compliance.kaldi as kaldi

    gen = torch.Generator().manual_seed(22)
    n = 20_917
    t = torch.arange(n, dtype=torch.float64) / 16000
    chirp = 0.4 * torch.sin(2 * torch.pi * (90 * t + 1200 * t * t))
    wav = (chirp + 0.03 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    feats = kaldi.fbank(wav[None], num_mel_bins=80)
    normalized = feats - feats.mean(dim=0, keepdim=True)
    out.mkdir(parents=True, exist_ok=True)
    wav.numpy().astype("<f4").tofile(out / "input.f32")
    feats.numpy().astype("<f4").tofile(out / "fbank.f32")
    normalized.numpy().astype("<f4").tofile(out / "normalized.f32")
    print(f"fbank: {n} samples -> {feats.shape[0]} frames")


CAMPPLUS_FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "campplus"
CAMPPLUS_SMALL = {"growth_rate": 4, "bn_size": 2, "init_channels": 16}


def campplus_goldens(out: Path, cfg: dict) -> None:
    """CAMPPlus (S3Gen's speaker encoder) on random weights and random batch
    norm statistics, from a 16 kHz recording to its 192-wide x-vector
    (`CAMPPlus.inference`: Kaldi fbank, mean normalization, the network).
    3.1 s of audio: the context pooling's 100-frame segments end in a
    partial one. Saved under S3Gen's prefix `speaker_encoder.`."""
    from chatterbox.models.s3gen.xvector import CAMPPlus, extract_feature

    torch.manual_seed(31)
    gen = torch.Generator().manual_seed(32)
    model = CAMPPlus(memory_efficient=False, **cfg).eval()
    perturb(model, gen)
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    n = 49_600
    t = torch.arange(n, dtype=torch.float64) / 16000
    wav = (0.3 * torch.sin(2 * torch.pi * (150 * t + 400 * t * t))
           + 0.02 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    rec = Recorder()
    model.head.register_forward_hook(rec.hook("head"))
    model.xvector.tdnn.register_forward_hook(rec.hook("tdnn"))
    model.xvector.out_nonlinear.register_forward_hook(rec.hook("frames"))
    with torch.no_grad():
        feats, _, _ = extract_feature([wav])
        embedding = model.inference([wav])
    out.mkdir(parents=True, exist_ok=True)
    state = {f"speaker_encoder.{k}": v.contiguous() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    save_file(state, str(out / "campplus.safetensors"))
    goldens = {
        "wav": wav,
        "features": feats[0],
        "head": rec.values["head"][0][0],
        "tdnn": rec.values["tdnn"][0][0],
        "frames": rec.values["frames"][0][0],
        "embedding": embedding[0],
    }
    save_file({k: v.contiguous() for k, v in goldens.items()}, str(out / "goldens.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    params = sum(p.numel() for p in model.parameters())
    print(f"campplus: {params / 1e6:.2f} M parameters, {feats.shape[1]} frames")


TOKENIZER_FIXTURE = ROOT / "crates" / "vivace-models" / "tests" / "fixtures" / "s3_tokenizer"
TOKENIZER_SMALL = {"n_audio_state": 128, "n_audio_head": 2, "n_audio_layer": 2}


def tokenizer_goldens(out: Path, cfg: dict) -> None:
    """The S3 speech tokenizer v2 (`S3Tokenizer.forward`: log-mel, encoder
    with rotary FSMN attention, FSQ) on random weights, for a 16 kHz
    recording; the values before rounding too. Saved under S3Gen's prefix
    `tokenizer.`."""
    from chatterbox.models.s3tokenizer import S3Tokenizer

    from s3tokenizer.model_v2 import S3TokenizerV2

    torch.manual_seed(41)
    gen = torch.Generator().manual_seed(42)
    # `S3Tokenizer.__init__` drops its `config` (it calls the parent with the
    # name only), so the parent's default config is set for the build.
    default = S3TokenizerV2.__init__.__defaults__[0]
    saved = {k: getattr(default, k) for k in cfg}
    for k, v in cfg.items():
        setattr(default, k, v)
    try:
        model = S3Tokenizer().eval()
    finally:
        for k, v in saved.items():
            setattr(default, k, v)
    perturb(model, gen)
    n = 52_000  # 3.25 s: 325 mel frames, 82 tokens
    t = torch.arange(n, dtype=torch.float64) / 16000
    wav = (0.3 * torch.sin(2 * torch.pi * (110 * t + 300 * t * t))
           + 0.02 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    rec = Recorder()
    model.encoder.register_forward_hook(rec.hook("encoder"))
    codebook = model.quantizer._codebook
    with torch.no_grad():
        tokens, lens = model.forward([wav])
        hidden = rec.values["encoder"][0]
        pre_round = codebook.project_down(hidden).float().tanh() * 0.9990000128746033
    out.mkdir(parents=True, exist_ok=True)
    state = {f"tokenizer.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "tokenizer.safetensors"))
    goldens = {
        "wav": wav,
        "mel": model.log_mel_spectrogram(wav[None])[0].T.contiguous(),
        "encoder": hidden[0],
        "pre_round": pre_round[0],
        "tokens": tokens[0].to(torch.int64),
    }
    save_file({k: v.contiguous() for k, v in goldens.items()}, str(out / "goldens.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    params = sum(p.numel() for p in model.parameters())
    near = ((pre_round.abs() - 0.5).abs() < 1e-4).sum().item()
    print(f"tokenizer: {params / 1e6:.2f} M parameters, {tokens.shape[1]} tokens, {near} values within 1e-4 of a rounding edge")


REFERENCE_FIXTURE = ROOT / "crates" / "vivace" / "tests" / "fixtures" / "chatterbox_reference"


def reference_goldens(out: Path) -> None:
    """S3Gen's `embed_ref` on a 24 kHz recording with the small tokenizer and
    CAMPPlus of the fixtures above (their saved weights): the prompt's
    tokens, 24 kHz mel and x-vector. `embed_ref` resamples to 16 kHz with
    torchaudio's sinc resampler, which Vivace's differs from."""
    import types

    from safetensors.torch import load_file
    from chatterbox.models.s3gen.s3gen import S3Token2Mel
    from chatterbox.models.s3gen.utils.mel import mel_spectrogram
    from chatterbox.models.s3gen.xvector import CAMPPlus
    from chatterbox.models.s3tokenizer import S3Tokenizer
    from s3tokenizer.model_v2 import S3TokenizerV2

    def strip(path: Path, prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in load_file(str(path)).items()}

    default = S3TokenizerV2.__init__.__defaults__[0]
    saved = {k: getattr(default, k) for k in TOKENIZER_SMALL}
    for k, v in TOKENIZER_SMALL.items():
        setattr(default, k, v)
    try:
        tokenizer = S3Tokenizer().eval()
    finally:
        for k, v in saved.items():
            setattr(default, k, v)
    tokenizer.load_state_dict(strip(TOKENIZER_FIXTURE / "tokenizer.safetensors", "tokenizer."))
    campplus = CAMPPlus(memory_efficient=False, **CAMPPLUS_SMALL).eval()
    campplus.load_state_dict(strip(CAMPPLUS_FIXTURE / "campplus.safetensors", "speaker_encoder."), strict=False)
    gen = torch.Generator().manual_seed(51)
    n = 24000 * 3 + 777
    t = torch.arange(n, dtype=torch.float64) / 24000
    wav = (0.3 * torch.sin(2 * torch.pi * (130 * t + 250 * t * t))
           + 0.2 * torch.sin(2 * torch.pi * (700 * t - 60 * t * t))
           + 0.02 * torch.randn(n, generator=gen, dtype=torch.float64)).float()
    this = types.SimpleNamespace(device="cpu", dtype=torch.float32, mel_extractor=mel_spectrogram,
                                 speaker_encoder=campplus, tokenizer=tokenizer)
    with torch.inference_mode():
        ref = S3Token2Mel.embed_ref(this, wav, 24000)
    out.mkdir(parents=True, exist_ok=True)
    import torchaudio
    goldens = {
        "wav": wav,
        "wav16": torchaudio.transforms.Resample(24000, 16000)(wav[None])[0],
        "prompt_token": ref["prompt_token"][0].to(torch.int64),
        "prompt_feat": ref["prompt_feat"][0],
        "embedding": ref["embedding"][0],
    }
    save_file({k: v.contiguous() for k, v in goldens.items()}, str(out / "embed_ref.safetensors"))
    print(f"embed_ref: {n} samples -> {goldens['prompt_token'].numel()} tokens, {goldens['prompt_feat'].shape[0]} frames")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real-size", action="store_true", help="the published sizes (not committed)")
    ap.add_argument("--out", type=Path, default=FIXTURE)
    args = ap.parse_args()
    cfg = REAL if args.real_size else SMALL
    if not args.real_size:
        mel_goldens(MEL_FIXTURE)
        fbank_goldens(FBANK_FIXTURE)
        campplus_goldens(CAMPPLUS_FIXTURE, CAMPPLUS_SMALL)
        tokenizer_goldens(TOKENIZER_FIXTURE, TOKENIZER_SMALL)
        reference_goldens(REFERENCE_FIXTURE)
    else:
        tokenizer_goldens(args.out / "s3_tokenizer", {"n_audio_state": 1280, "n_audio_head": 20, "n_audio_layer": 6})
        campplus_goldens(args.out / "campplus", {"growth_rate": 32, "bn_size": 4, "init_channels": 128})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    prompt, tokens = (250, 250) if args.real_size else (10, 20)
    run(cfg, meanflow=False, out=args.out, prompt_tokens=prompt, tokens=tokens, seed=11, real_size=args.real_size)
    run(cfg, meanflow=True, out=args.out, prompt_tokens=prompt, tokens=tokens, seed=12, real_size=args.real_size)


if __name__ == "__main__":
    main()
