#!/usr/bin/env python3
"""Build random-weight Hugging Face `VitsModel` checkpoints (the MMS-TTS
format) and record their waveforms with `transformers`, as goldens for
Vivace's MMS loader.

No MMS weights can be downloaded on the development machines, so the
reference is `transformers.VitsModel` itself on random weights, saved with
`save_pretrained` exactly as the hub checkpoints are laid out:
`config.json`, `model.safetensors`, `vocab.json`, `tokenizer_config.json`.

Small checkpoints (committed under `crates/vivace/tests/fixtures/mms/`):

* `tiny-sdp`: one speaker, stochastic duration predictor, 16 kHz, add_blank,
  lower-casing normalisation (the mms-tts-* defaults, at a small size).
* `tiny-dp-multi`: three speakers (speaker embedding and every `cond` layer),
  deterministic duration predictor, 22050 Hz, no blanks, and weight norm
  stored as `weight_g`/`weight_v` like the hub's checkpoints (`tiny-sdp` has
  the `parametrizations.weight.original0/1` of newer `save_pretrained`).

With `--real DIR`, also a checkpoint at the real MMS size (the `VitsConfig()`
defaults are the mms-tts-eng architecture, 36 M parameters) and its goldens,
for the benchmark and a by-hand parity check; it is not committed.

Every parameter is perturbed with seeded noise after the default
initialisation (the default leaves some tensors at zero or one, which would
hide a wrong mapping), and the last convolution is scaled so the waveform
stays clear of the final tanh's saturation (±1 everywhere would hide errors). Goldens are taken with `noise_scale = 0` and
`noise_scale_duration = 0`, so they are deterministic; each records the text,
the token ids `VitsTokenizer` produced, the speaker, the speaking rate and the
float waveform (little-endian f32).

Run by hand in a throwaway virtual environment (torch from PyPI, CPU is
enough):

    python3 -m venv /tmp/mms-venv
    /tmp/mms-venv/bin/pip install torch transformers==5.24.0
    /tmp/mms-venv/bin/python tools/make_mms_fixtures.py [--real /tmp/mms-real]
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import VitsConfig, VitsModel, VitsTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "vivace" / "tests" / "fixtures" / "mms"

# The character vocabulary of mms-tts-eng (id 0 is the blank/pad token).
VOCAB_CHARS = ["k", "'", "z", "y", "u", "d", "h", "e", "s", "w", "–", "3", "c", "p", "-", "1", "j",
               "m", "i", " ", "f", "l", "o", "0", "b", "r", "a", "4", "2", "n", "_", "x", "v",
               "t", "q", "5", "6", "g"]

TEXTS = [
    "Hello world.",
    "The quick brown fox, 42 times!",
    "UPPER case and ümlauts are dropped",
]


def vocab() -> dict:
    return {ch: i for i, ch in enumerate(VOCAB_CHARS)}


def small_config(**overrides) -> VitsConfig:
    base = dict(
        vocab_size=len(VOCAB_CHARS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        window_size=4,
        ffn_dim=64,
        ffn_kernel_size=3,
        flow_size=16,
        spectrogram_bins=33,
        upsample_initial_channel=32,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=[[1, 3], [1, 3]],
        duration_predictor_filter_channels=24,
        depth_separable_num_layers=3,
        duration_predictor_num_flows=2,
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2,
        wavenet_kernel_size=5,
        sampling_rate=16000,
    )
    base.update(overrides)
    return VitsConfig(**base)


def perturb(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.1 if p.dim() > 1 else 0.05
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def keep_out_of_saturation(model: VitsModel, ids: torch.Tensor, speaker) -> None:
    """Scale `decoder.conv_post` (no bias) so that the signal before the final
    tanh has a standard deviation of 0.3: random weights otherwise drive the
    tanh into saturation, where ±1 everywhere would hide any error."""
    seen = []
    hook = model.decoder.conv_post.register_forward_hook(lambda m, i, o: seen.append(o.std().item()))
    model.noise_scale = 0.0
    model.noise_scale_duration = 0.0
    with torch.no_grad():
        model(ids, speaker_id=speaker)
        model.decoder.conv_post.weight.mul_(0.3 / seen[-1])
    hook.remove()


def use_legacy_weight_norm_names(path: Path) -> None:
    """Rename `parametrizations.weight.original0/1` to `weight_g`/`weight_v`,
    the names of the checkpoints on the hub (saved by older transformers);
    `from_pretrained` reads both."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(path)
    renamed = {
        k.replace("parametrizations.weight.original0", "weight_g")
         .replace("parametrizations.weight.original1", "weight_v"): v
        for k, v in tensors.items()
    }
    save_file(renamed, path, metadata={"format": "pt"})


def build(name: str, cfg: VitsConfig, seed: int, tokenizer_kwargs: dict, out_root: Path,
          cases: list, legacy_names: bool = False) -> None:
    torch.manual_seed(seed)
    model = VitsModel(cfg).eval()
    perturb(model, seed + 1)
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps(vocab(), ensure_ascii=False, indent=2) + "\n")
    tok = VitsTokenizer(str(vocab_file), **tokenizer_kwargs)
    keep_out_of_saturation(model, tok(cases[0][0], return_tensors="pt").input_ids, cases[0][1])
    model.save_pretrained(out)
    if legacy_names:
        use_legacy_weight_norm_names(out / "model.safetensors")
    tok.save_pretrained(out)
    # The tokenizer rewrites vocab.json; keep ours byte for byte.
    vocab_file.write_text(json.dumps(vocab(), ensure_ascii=False, indent=2) + "\n")

    # Reload from disk, as a user would, and take the goldens from that.
    model = VitsModel.from_pretrained(out).eval()
    tok = VitsTokenizer.from_pretrained(out)
    model.noise_scale = 0.0
    model.noise_scale_duration = 0.0
    goldens = []
    for i, (text, speaker, rate) in enumerate(cases):
        ids = tok(text, return_tensors="pt").input_ids
        model.speaking_rate = rate
        with torch.no_grad():
            wave = model(ids, speaker_id=speaker).waveform[0].numpy().astype("<f4")
        file = f"golden_{i}.f32"
        wave.tofile(out / file)
        saturated = float((abs(wave) > 0.999).mean())
        goldens.append({
            "saturated_fraction": saturated,
            "text": text,
            "ids": ids[0].tolist(),
            "speaker": speaker,
            "speaking_rate": rate,
            "samples": int(wave.shape[0]),
            "file": file,
        })
        print(f"{name}: {text!r} speaker {speaker} rate {rate}: {len(ids[0])} ids, "
              f"{wave.shape[0]} samples, std {wave.std():.3f}, {saturated:.1%} saturated")
    (out / "goldens.json").write_text(json.dumps(goldens, ensure_ascii=False, indent=1) + "\n")
    keys = sorted(model.state_dict().keys())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, e.g. {keys[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=Path, help="also build a real-size checkpoint here")
    parser.add_argument("--real-only", action="store_true",
                        help="build only the real-size checkpoint (leave the committed fixtures alone)")
    args = parser.parse_args()
    if args.real_only and not args.real:
        parser.error("--real-only needs --real DIR")
    mms_tok = dict(language="eng", add_blank=True, normalize=True, phonemize=False, is_uroman=False)
    if args.real_only:
        build("mms-real-size", VitsConfig(vocab_size=len(VOCAB_CHARS)), 3, mms_tok, args.real,
              [(TEXTS[0], None, 1.0), (TEXTS[1], None, 1.0)])
        return
    build("tiny-sdp", small_config(), 7, mms_tok, OUT,
          [(TEXTS[0], None, 1.0), (TEXTS[1], None, 1.0), (TEXTS[1], None, 1.5), (TEXTS[2], None, 1.0)])
    build("tiny-dp-multi",
          small_config(use_stochastic_duration_prediction=False, num_speakers=3,
                       speaker_embedding_size=8, sampling_rate=22050),
          11, dict(mms_tok, add_blank=False), OUT,
          [(TEXTS[0], 0, 1.0), (TEXTS[0], 2, 1.0), (TEXTS[1], 1, 0.8)], legacy_names=True)
    if args.real:
        cfg = VitsConfig(vocab_size=len(VOCAB_CHARS))
        build("mms-real-size", cfg, 3, mms_tok, args.real,
              [(TEXTS[0], None, 1.0), (TEXTS[1], None, 1.0)])


if __name__ == "__main__":
    main()
