#!/usr/bin/env python3
"""Peer benchmark: Vivace against Piper 1.8 on the same texts, side by side.

Runs both command lines in turn (Vivace, Piper, Vivace, Piper, ...) for
several rounds and prints medians and the Vivace/Piper ratio of:
  - whole-process wall time to synthesize a long text (~60 s of audio) to a WAV,
    model load included;
  - time to first audio for a three-sentence paragraph streamed as raw PCM to
    stdout (process start to the first byte);
  - peak resident memory of the long run.
Noise scales are 0 on both sides, so both produce the same audio.
With `--precision P` (repeatable) Vivace runs once per precision each round
(`VIVACE_PRECISION=P`), its figures suffixed `_P` but for f32's.

Piper (piper-tts 1.8.0 + onnxruntime) is installed by this script into a
throwaway virtual environment (default /tmp/vivace-peer-venv). Vivace is the
release binary (`cargo build --release` first). Usage:

    python3 bench/peer.py [--rounds 5] [--vivace target/release/vivace] [--voice VOICE.onnx]
                          [--precision f32 --precision int8] [--json OUT]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LONG_TEXT = " ".join([
    "The translation service received a long document this morning.",
    "It contained twelve paragraphs about the history of the old harbour, and every one of them had to be read aloud.",
    "The first paragraph described the fishing boats that left before sunrise.",
    "The second one told how the merchants arrived from the south with salt, cloth and spices.",
    "In 1843 a storm destroyed half of the wooden piers, and the town spent nine years rebuilding them in stone.",
    "Is that why the eastern wall looks so different from the western one?",
    "Yes; the older stones came from a quarry that closed long ago.",
    "Visitors often ask where the lighthouse keeper lived.",
    "His house still stands at the end of the road, painted white with a green door.",
    "On clear evenings you can see the light from forty kilometres away.",
    "The museum opens at ten o'clock and closes at half past five, except on Mondays.",
    "Tickets cost eight euros for adults and three for children under twelve.",
    "Guided tours in English start at eleven and at two.",
    "Please remember that photography is not allowed inside the archive room.",
    "The archive keeps letters, maps and ship logs from more than three centuries.",
    "Some of the maps show islands that were never found again.",
    "Researchers believe the sailors confused clouds on the horizon with land.",
    "Others think the islands were invented to attract investors.",
    "Either way, the maps are beautiful, and they are the most popular part of the collection.",
    "Thank you for listening, and enjoy your visit to the harbour.",
])
SHORT_TEXT = "Welcome to the harbour museum. The next tour starts in ten minutes. Please wait by the green door."


def ensure_piper(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import piper, onnxruntime"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "piper-tts==1.8.0", "onnxruntime"],
            check=True,
        )
    return python


def run_to_file(cmd: list, stdin_text: str, env=None) -> tuple:
    """Wall seconds and peak RSS (MiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def first_audio(cmd: list, stdin_text: str, env=None) -> float:
    """Seconds from process start to the first byte of audio on stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    first = proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    proc.wait()
    if not first:
        raise SystemExit(f"no audio from: {' '.join(cmd)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vivace", default=str(ROOT / "target" / "release" / "vivace"))
    parser.add_argument("--voice", help="Piper .onnx (default: Vivace's cached default voice)")
    parser.add_argument("--venv", default="/tmp/vivace-peer-venv")
    parser.add_argument("--precision", action="append", help="Vivace's VIVACE_PRECISION (default f32)")
    parser.add_argument("--json")
    args = parser.parse_args()
    precisions = args.precision or ["f32"]
    suffix = lambda p: "" if p == "f32" else f"_{p}"  # noqa: E731

    voice = args.voice or subprocess.run(
        [args.vivace, "download"], capture_output=True, text=True, check=True
    ).stdout.strip()
    python = ensure_piper(Path(args.venv))
    out = Path("/tmp/vivace-peer")
    out.mkdir(exist_ok=True)
    scales = ["--noise-scale", "0", "--noise-w-scale", "0"]
    vivace_wav = [args.vivace, "say", "--voice", voice, *scales, "-f", str(out / "vivace.wav")]
    piper_wav = [str(python), "-m", "piper", "-m", voice, *scales, "-f", str(out / "piper.wav")]
    vivace_raw = [args.vivace, "say", "--voice", voice, *scales, "--output-raw"]
    piper_raw = [str(python), "-m", "piper", "-m", voice, *scales, "--output-raw"]

    keys = ["piper_wall", "piper_rss", "piper_ttfa"]
    for p in precisions:
        keys += [f"vivace_wall{suffix(p)}", f"vivace_rss{suffix(p)}", f"vivace_ttfa{suffix(p)}"]
    rows = {k: [] for k in keys}
    for r in range(args.rounds + 1):  # round 0 warms the page cache, not counted
        figures = {}
        for p in precisions:
            env = dict(os.environ, VIVACE_PRECISION=p)
            vw, vr = run_to_file(vivace_wav, LONG_TEXT, env)
            figures.update({f"vivace_wall{suffix(p)}": vw, f"vivace_rss{suffix(p)}": vr})
        pw, pr = run_to_file(piper_wav, LONG_TEXT)
        for p in precisions:
            env = dict(os.environ, VIVACE_PRECISION=p)
            figures[f"vivace_ttfa{suffix(p)}"] = first_audio(vivace_raw, SHORT_TEXT, env)
        figures.update({"piper_wall": pw, "piper_rss": pr, "piper_ttfa": first_audio(piper_raw, SHORT_TEXT)})
        if r == 0:
            continue
        for key, value in figures.items():
            rows[key].append(value)
        walls = ", ".join(f"{p} {figures[f'vivace_wall{suffix(p)}']:.2f} s" for p in precisions)
        print(f"round {r}: long {walls} vs Piper {pw:.2f} s", file=sys.stderr)

    import wave
    with wave.open(str(out / "vivace.wav")) as w:
        audio_s = w.getnframes() / w.getframerate()
    med = {k: statistics.median(v) for k, v in rows.items()}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "audio_s": round(audio_s, 2),
        "medians": {k: round(v, 3) for k, v in med.items()},
        "spread": {k: [round(min(v), 3), round(max(v), 3)] for k, v in rows.items()},
        # Every round's figures, so per-round ratios can be checked later.
        "per_round": {k: [round(x, 3) for x in v] for k, v in rows.items()},
        "precisions": precisions,
        "cpu_kernel": os.environ.get("VIVACE_CPU_KERNEL", "detected"),
        "ratios": {},
    }
    for p in precisions:
        x = suffix(p)
        report["ratios"].update({
            f"long_wall{x}": round(med[f"vivace_wall{x}"] / med["piper_wall"], 3),
            f"first_audio{x}": round(med[f"vivace_ttfa{x}"] / med["piper_ttfa"], 3),
            f"peak_rss{x}": round(med[f"vivace_rss{x}"] / med["piper_rss"], 3),
        })
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
