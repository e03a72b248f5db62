#!/usr/bin/env python3
"""pyopenjtalk-plus's MeCab (`run_mecab_detailed`, OpenJTalk's C++ behind
it, text2mecab included) timed on the MeCab goldens' inputs, as
`cargo run --release -p vivace-frontend --example mecab_corpus` times
Vivace's port: the median of ROUNDS passes, in microseconds per character.

    /tmp/jaenv/bin/python bench/mecab_peer.py crates/vivace/tests/fixtures/japanese/mecab.json [ROUNDS]
"""

import json
import statistics
import sys
import time

import pyopenjtalk

inputs = [c["input"] for c in json.load(open(sys.argv[1], encoding="utf-8"))["cases"]]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
pyopenjtalk.run_mecab_detailed("初期化")
times = []
for _ in range(rounds):
    start = time.perf_counter()
    for text in inputs:
        pyopenjtalk.run_mecab_detailed(text)
    times.append(time.perf_counter() - start)
chars = sum(len(t) for t in inputs)
median = statistics.median(times)
print(json.dumps({"texts": len(inputs), "chars": chars, "median_s": round(median, 5), "us_per_char": round(median * 1e6 / chars, 2)}))
