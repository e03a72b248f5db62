#!/usr/bin/env python3
"""piper-tts 1.8's ThaiPhonemizer (TLTK 1.10) timed on the same 46 texts as
`cargo run --release -p vivace-frontend --example phonemize_thai`: the load
(importing TLTK reads its tables) and the median of ROUNDS passes, each
text from TLTK's state at import (restored, as the goldens are made).

    /tmp/thenv/bin/python bench/thai_peer.py crates/vivace/tests/fixtures/thai/goldens.json [ROUNDS]
"""

import copy
import json
import statistics
import sys
import time

start = time.perf_counter()
from piper.phonemize_thai import ThaiPhonemizer  # noqa: E402
from tltk import nlp  # noqa: E402

phonemizer = ThaiPhonemizer()
load = time.perf_counter() - start

cases = json.load(open(sys.argv[1], encoding="utf-8"))["cases"]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
state = (copy.copy(nlp.BiCount), copy.copy(nlp.Count), nlp.TotalWord)
times = []
for _ in range(rounds):
    elapsed = 0.0
    for case in cases:
        nlp.BiCount, nlp.Count, nlp.TotalWord = copy.copy(state[0]), copy.copy(state[1]), state[2]
        t = time.perf_counter()
        phonemizer.phonemize(case["text"])
        elapsed += time.perf_counter() - t
    times.append(elapsed)
chars = sum(len(c["text"]) for c in cases)
median = statistics.median(times)
print(json.dumps({"load_s": round(load, 3), "texts": len(cases), "chars": chars, "median_s": round(median, 4), "us_per_char": round(median * 1e6 / chars, 1)}))
