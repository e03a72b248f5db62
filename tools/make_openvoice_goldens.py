#!/usr/bin/env python3
"""Goldens for OpenVoice v2's tone-colour converter, on random weights.

The reference is `openvoice-cli` 0.0.5 from PyPI, which carries the same
`models.py`, `modules.py` and `mel_processing.py` as myshell-ai/OpenVoice,
driven as `ToneColorConverter.extract_se` and `.convert` drive it (the
watermark left out). The converter is built from a config shaped like the
published `converter/config.json` (v2, `zero_g`), with random weights that
keep weight norm's `weight_g`/`weight_v` (each `weight_g` scaled at random,
so a loader that ignores it fails), saved as the published `checkpoint.pth`
is: `torch.save({"model": state_dict, "iteration": 0})`.

Run by hand in a throwaway environment:

    python3 -m venv /tmp/ovenv
    /tmp/ovenv/bin/pip install torch librosa soundfile
    /tmp/ovenv/bin/pip install --no-deps openvoice-cli==0.0.5
    /tmp/ovenv/bin/python tools/make_openvoice_goldens.py \
        crates/vivace/tests/fixtures/openvoice

With `--full-size DIR` it writes a converter at the published size instead
(`checkpoint.pth` and `config.json`, about 130 MB, for speed measurements),
and nothing else.

Files (arrays as `.npy`, float32):
- `config.json`, `checkpoint.pth`: the converter;
- `source.wav`, `reference.wav`: 16-bit PCM at 22,050 Hz, synthetic voiced
  sounds (harmonics with vibrato, formant-like filtering and noise);
- `spec_source.npy` `[513, T]`: `spectrogram_torch` of the source;
- `se_source.npy`, `se_reference.npy` `[256]`: `extract_se` of each file;
- `z.npy`, `z_p.npy`, `z_hat.npy` `[inter, T]`: the stages of
  `voice_conversion` at `tau = 0` (source to reference);
- `converted.npy` `[T * hop]`: its waveform;
- `noise.npy` `[inter, T]` and `converted_tau.npy`: the same at `tau = 0.3`
  with the posterior's `randn_like` replaced by `noise.npy`.
"""

import argparse
import json
import os
import sys

import librosa
import numpy as np
import soundfile
import torch

from openvoice_cli.mel_processing import spectrogram_torch
from openvoice_cli.models import SynthesizerTrn

RATE = 22050

FULL_MODEL = {
    "zero_g": True,
    "inter_channels": 192,
    "hidden_channels": 192,
    "filter_channels": 768,
    "n_heads": 2,
    "n_layers": 6,
    "kernel_size": 3,
    "p_dropout": 0.1,
    "resblock": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "upsample_rates": [8, 8, 2, 2],
    "upsample_initial_channel": 512,
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "gin_channels": 256,
}

# The published structure (every stage, the real spectrogram and speaker
# embedding sizes) with narrow channels, so the fixture stays small.
SMALL_MODEL = dict(
    FULL_MODEL,
    inter_channels=16,
    hidden_channels=16,
    filter_channels=32,
    upsample_initial_channel=32,
    resblock_kernel_sizes=[3, 7],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
)

DATA = {
    "sampling_rate": RATE,
    "filter_length": 1024,
    "hop_length": 256,
    "win_length": 1024,
    "n_speakers": 0,
}


def build(model_cfg):
    torch.manual_seed(0)
    model = SynthesizerTrn(0, DATA["filter_length"] // 2 + 1, n_speakers=0, **model_cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(torch.empty_like(p).uniform_(0.5, 1.5))
            elif name.endswith("bias") or "layernorm" in name:
                p.copy_(torch.empty_like(p).uniform_(-0.2, 0.2) + (1.0 if name.endswith("layernorm.weight") else 0.0))
    model.eval()
    return model


def save_converter(model, model_cfg, out):
    os.makedirs(out, exist_ok=True)
    config = {"_version_": "v2", "data": DATA, "model": model_cfg}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    torch.save({"model": model.state_dict(), "iteration": 0}, os.path.join(out, "checkpoint.pth"))


def voiced(seconds, f0, formants, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    y = np.zeros_like(t)
    for k in range(1, 30):
        freq = k * pitch
        gain = sum(np.exp(-((freq - fm) ** 2) / (2 * 120.0**2)) for fm in formants) + 0.02
        y += gain * np.sin(k * phase) / k
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t) ** 2
    y = y * envelope + 0.01 * rng.standard_normal(t.shape)
    return (0.6 * y / np.abs(y).max()).astype(np.float32)


def spectrogram(y):
    return spectrogram_torch(y, DATA["filter_length"], RATE, DATA["hop_length"], DATA["win_length"], center=False)


def extract_se(model, path):
    # ToneColorConverter.extract_se for one file.
    audio, _ = librosa.load(path, sr=RATE)
    y = torch.FloatTensor(audio).unsqueeze(0)
    with torch.no_grad():
        return model.ref_enc(spectrogram(y).transpose(1, 2)).unsqueeze(-1)


def save(out, name, tensor):
    np.save(os.path.join(out, name), np.ascontiguousarray(tensor.detach().cpu().numpy().astype(np.float32)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?")
    parser.add_argument("--full-size")
    args = parser.parse_args()
    if args.full_size:
        save_converter(build(FULL_MODEL), FULL_MODEL, args.full_size)
        return
    if not args.out:
        sys.exit("usage: make_openvoice_goldens.py OUT_DIR | --full-size DIR")
    out = args.out
    model = build(SMALL_MODEL)
    save_converter(model, SMALL_MODEL, out)

    soundfile.write(os.path.join(out, "source.wav"), voiced(1.0, 120.0, [700, 1200, 2600], 1), RATE, subtype="PCM_16")
    soundfile.write(os.path.join(out, "reference.wav"), voiced(1.6, 210.0, [400, 2000, 2900], 2), RATE, subtype="PCM_16")

    se_src = extract_se(model, os.path.join(out, "source.wav"))
    se_ref = extract_se(model, os.path.join(out, "reference.wav"))
    save(out, "se_source.npy", se_src.reshape(-1))
    save(out, "se_reference.npy", se_ref.reshape(-1))

    # ToneColorConverter.convert, stage by stage.
    audio, _ = librosa.load(os.path.join(out, "source.wav"), sr=RATE)
    y = torch.FloatTensor(audio).unsqueeze(0)
    spec = spectrogram(y)
    save(out, "spec_source.npy", spec[0])
    lengths = torch.LongTensor([spec.size(-1)])
    with torch.no_grad():
        o, _, (z, z_p, z_hat) = model.voice_conversion(spec, lengths, sid_src=se_src, sid_tgt=se_ref, tau=0.0)
    save(out, "z.npy", z[0])
    save(out, "z_p.npy", z_p[0])
    save(out, "z_hat.npy", z_hat[0])
    save(out, "converted.npy", o[0, 0])

    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(z.shape, generator=gen)
    original = torch.randn_like
    torch.randn_like = lambda t, *a, **k: noise.clone()
    try:
        with torch.no_grad():
            o_tau = model.voice_conversion(spec, lengths, sid_src=se_src, sid_tgt=se_ref, tau=0.3)[0]
    finally:
        torch.randn_like = original
    save(out, "noise.npy", noise[0])
    save(out, "converted_tau.npy", o_tau[0, 0])
    print(f"frames {spec.size(-1)}, samples {o.shape[-1]}, |converted| max {o.abs().max():.4f}")


if __name__ == "__main__":
    main()
