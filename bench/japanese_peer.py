#!/usr/bin/env python3
"""piper-tts 1.8's JapanesePhonemizer (pyopenjtalk-plus 0.4.1.post9, with
onnxruntime for its 「何」 model) timed on the same texts as `cargo run
--release -p vivace-frontend --example phonemize_japanese`: the load
(import, the dictionary and Sudachi opened by a first call) and the median
of ROUNDS passes.

    /tmp/ja9/bin/python bench/japanese_peer.py crates/vivace/tests/fixtures/japanese/njd.json [ROUNDS]
"""

import json
import statistics
import sys
import time

start = time.perf_counter()
from piper.phonemize_japanese import JapanesePhonemizer  # noqa: E402

phonemizer = JapanesePhonemizer()
phonemizer.phonemize("今日は中が良い。")
load = time.perf_counter() - start

texts = [c["text"] for c in json.load(open(sys.argv[1], encoding="utf-8"))["piper"]]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
times = []
for _ in range(rounds):
    t = time.perf_counter()
    for text in texts:
        phonemizer.phonemize(text)
    times.append(time.perf_counter() - t)
chars = sum(len(t) for t in texts)
median = statistics.median(times)
print(json.dumps({"load_s": round(load, 3), "texts": len(texts), "chars": chars, "median_s": round(median, 4), "us_per_char": round(median * 1e6 / chars, 1)}))
