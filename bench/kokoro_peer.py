#!/usr/bin/env python3
"""onnxruntime running Kokoro-82M's int8 export (`kokoro-v1.0.int8.onnx`,
the file kokoro-onnx runs) on the same input as `cargo run --release -p
vivace-models --example kokoro_speed`: the stage goldens' tokens and style
row. Prints the session load and the median of ROUNDS runs, with the
real-time factor, as JSON.

    /tmp/kk/bin/python bench/kokoro_peer.py MODEL.onnx crates/vivace/tests/fixtures/kokoro [ROUNDS] [THREADS]
"""

import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, fixtures = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 0
meta = json.load(open(os.path.join(fixtures, "stages.json")))
tokens = np.array([meta["tokens"]], dtype=np.int64)
style = np.fromfile(os.path.join(fixtures, "style.f32"), dtype="<f4").reshape(1, 256)
start = time.perf_counter()
options = ort.SessionOptions()
if threads:
    options.intra_op_num_threads = threads
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
load = time.perf_counter() - start
times = []
for _ in range(rounds):
    t = time.perf_counter()
    audio = session.run(None, {"tokens": tokens, "style": style, "speed": np.array([1.0], dtype=np.float32)})[0]
    times.append(time.perf_counter() - t)
seconds = audio.size / 24000
median = statistics.median(times)
print(json.dumps({"load_s": round(load, 3), "audio_s": round(seconds, 3), "median_s": round(median, 3), "rtf": round(median / seconds, 3)}))
