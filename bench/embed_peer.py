#!/usr/bin/env python3
"""Peer benchmark for speaker embeddings: Vivace against resemblyzer 0.1.4
(PyTorch) on the same WAV files, side by side.

For each round, in turn:
  - resemblyzer in one Python process: import and model load (cold), then the
    warm time of `embed_utterance(preprocess_wav(f))` over all files
    (median of --runs);
  - Vivace: `vivace bench-embed-run --variant optimized` (the same work from
    the WAV file on: reading, resampling, volume, VAD trimming, mel frames,
    encoder), cold start and median warm time of --runs.
Prints the medians over rounds and the Vivace/resemblyzer ratios; --json
writes everything.

resemblyzer (and the PyTorch wheel pip picks for it from PyPI) is installed
by this script into a throwaway virtual environment (default
/tmp/vivace-embed-peer-venv), or taken from --python. Vivace is the release
binary (`cargo build --release` first); it fetches the encoder weights into
its cache itself. Usage:

    python3 bench/embed_peer.py FILE.wav [...] [--rounds 5] [--runs 9] [--json OUT]
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PEER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
start = time.perf_counter()
import torch
from resemblyzer import VoiceEncoder, preprocess_wav
encoder = VoiceEncoder("cpu", verbose=False)
files, runs = sys.argv[2:], int(sys.argv[1])
run = lambda: [encoder.embed_utterance(preprocess_wav(f)) for f in files]
run()
cold = time.perf_counter() - start
times = []
for _ in range(runs):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
print(json.dumps({"cold_start_s": cold, "latencies_s": times, "torch": torch.__version__,
                  "torch_threads": torch.get_num_threads()}))
"""


def ensure_resemblyzer(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import resemblyzer, torch"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "resemblyzer==0.1.4", "setuptools<81"],
                       check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--vivace", type=Path, default=ROOT / "target" / "release" / "vivace")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/vivace-embed-peer-venv"))
    parser.add_argument("--python", type=Path, help="a Python with resemblyzer already installed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    python = args.python or ensure_resemblyzer(args.venv)
    files = [str(f.resolve()) for f in args.files]
    # Fetch the encoder weights once, outside the timed runs.
    subprocess.run([str(args.vivace), "embed", files[0]], check=True, capture_output=True)
    rounds = []
    for r in range(args.rounds):
        peer = json.loads(subprocess.run(
            [str(python), "-c", PEER, str(args.runs), *files], check=True, capture_output=True, text=True
        ).stdout)
        ours = json.loads(subprocess.run(
            [str(args.vivace), "bench-embed-run", "--device", "cpu",
             "--variant", "optimized", "--runs", str(args.runs), *files],
            check=True, capture_output=True, text=True,
        ).stdout)
        row = {
            "vivace_warm_s": statistics.median(ours["latencies_s"]),
            "resemblyzer_warm_s": statistics.median(peer["latencies_s"]),
            "vivace_cold_s": ours["cold_start_s"],
            "resemblyzer_cold_s": peer["cold_start_s"],
            "windows": ours["windows"],
            "audio_s": ours["audio_s"],
            "torch": peer["torch"],
            "torch_threads": peer["torch_threads"],
        }
        rounds.append(row)
        print(f"round {r + 1}: warm {row['vivace_warm_s']:.4f} s vs {row['resemblyzer_warm_s']:.4f} s, "
              f"cold {row['vivace_cold_s']:.3f} s vs {row['resemblyzer_cold_s']:.3f} s", flush=True)
    med = lambda key: statistics.median(r[key] for r in rounds)
    summary = {
        "files": files,
        "audio_s": rounds[0]["audio_s"],
        "windows": rounds[0]["windows"],
        "torch": rounds[0]["torch"],
        "torch_threads": rounds[0]["torch_threads"],
        "vivace_warm_s": med("vivace_warm_s"),
        "resemblyzer_warm_s": med("resemblyzer_warm_s"),
        "warm_ratio": med("vivace_warm_s") / med("resemblyzer_warm_s"),
        "warm_ratio_per_round": [r["vivace_warm_s"] / r["resemblyzer_warm_s"] for r in rounds],
        "vivace_cold_s": med("vivace_cold_s"),
        "resemblyzer_cold_s": med("resemblyzer_cold_s"),
        "cold_ratio": med("vivace_cold_s") / med("resemblyzer_cold_s"),
        "rounds": rounds,
    }
    print(f"\n{len(files)} files, {summary['audio_s']:.1f} s of audio, {summary['windows']} windows; "
          f"medians of {args.rounds} rounds (PyTorch {summary['torch']}, {summary['torch_threads']} threads)")
    print(f"warm, all files: Vivace {summary['vivace_warm_s']:.4f} s, resemblyzer {summary['resemblyzer_warm_s']:.4f} s, "
          f"ratio {summary['warm_ratio']:.2f}")
    print(f"cold (process start to embeddings, load included): Vivace {summary['vivace_cold_s']:.3f} s, "
          f"resemblyzer {summary['resemblyzer_cold_s']:.3f} s, ratio {summary['cold_ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
