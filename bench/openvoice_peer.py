#!/usr/bin/env python3
"""OpenVoice v2's tone-colour converter side by side: Vivace against the
PyTorch reference (`openvoice-cli` 0.0.5's models), same converter, same
recordings, same machine, in alternating rounds.

The converter is a published-size random one from
`tools/make_openvoice_goldens.py --full-size DIR` (speed depends on shapes,
not values). Each round times, in PyTorch (model loaded once, warmed up,
`torch.set_num_threads` = the cores), `extract_se` of the reference and of
the source and `convert` at tau 0.3, as `ToneColorConverter` runs them (the
watermark off), then runs `vivace clone-voice --json` once, whose own
timings exclude its load. Prints medians and the Vivace/PyTorch ratio;
`--json OUT` keeps them.

    cargo build --release -p vivace
    /tmp/cbenv/bin/python bench/openvoice_peer.py DIR SOURCE.wav REFERENCE.wav [--rounds 5] [--json OUT]

Needs torch, librosa and `pip install --no-deps openvoice-cli==0.0.5`.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import librosa
import torch

from openvoice_cli.mel_processing import spectrogram_torch
from openvoice_cli.models import SynthesizerTrn
from openvoice_cli import utils

ROOT = Path(__file__).resolve().parent.parent


class Reference:
    """ToneColorConverter's extract_se and convert, without the watermark."""

    def __init__(self, d):
        self.hps = utils.get_hparams_from_file(str(d / "config.json"))
        h = self.hps
        self.model = SynthesizerTrn(0, h.data.filter_length // 2 + 1, n_speakers=0, **h.model.__dict__)
        self.model.load_state_dict(torch.load(d / "checkpoint.pth", map_location="cpu")["model"], strict=False)
        self.model.eval()

    def spec(self, path):
        h = self.hps.data
        audio, _ = librosa.load(path, sr=h.sampling_rate)
        y = torch.FloatTensor(audio).unsqueeze(0)
        return spectrogram_torch(y, h.filter_length, h.sampling_rate, h.hop_length, h.win_length, center=False)

    def extract_se(self, path):
        with torch.no_grad():
            return self.model.ref_enc(self.spec(path).transpose(1, 2)).unsqueeze(-1)

    def convert(self, path, src, tgt, tau=0.3):
        spec = self.spec(path)
        with torch.no_grad():
            lengths = torch.LongTensor([spec.size(-1)])
            return self.model.voice_conversion(spec, lengths, sid_src=src, sid_tgt=tgt, tau=tau)[0][0, 0].numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("source")
    ap.add_argument("reference")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--vivace", default=str(ROOT / "target/release/vivace"))
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    ref = Reference(args.dir)
    src_se = ref.extract_se(args.source)
    tgt_se = ref.extract_se(args.reference)
    audio_s = len(ref.convert(args.source, src_se, tgt_se)) / ref.hps.data.sampling_rate  # warm-up
    rows = {"torch_embed_s": [], "torch_convert_s": [], "vivace_embed_s": [], "vivace_convert_s": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        src_se = ref.extract_se(args.source)
        tgt_se = ref.extract_se(args.reference)
        t1 = time.perf_counter()
        ref.convert(args.source, src_se, tgt_se)
        t2 = time.perf_counter()
        rows["torch_embed_s"].append(t1 - t0)
        rows["torch_convert_s"].append(t2 - t1)
        out = subprocess.run(
            [args.vivace, "clone-voice", args.source, "--reference", args.reference,
             "--converter", str(args.dir), "-f", "/tmp/openvoice-peer.wav", "--seed", "1", "--json"],
            check=True, capture_output=True, text=True,
        )
        report = json.loads(out.stdout)
        rows["vivace_embed_s"].append(report["embed_s"])
        rows["vivace_convert_s"].append(report["convert_s"])
    med = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "audio_s": audio_s,
        "rounds": args.rounds,
        "medians": med,
        "convert_ratio": med["vivace_convert_s"] / med["torch_convert_s"],
        "embed_ratio": med["vivace_embed_s"] / med["torch_embed_s"],
        "vivace_rtf": med["vivace_convert_s"] / audio_s,
        "torch_rtf": med["torch_convert_s"] / audio_s,
        "runs": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
