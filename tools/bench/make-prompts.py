#!/usr/bin/env python3
"""Benchmark prompts from the books the bundled models never saw (tools/models/split.json).

  tools/bench/make-prompts.py      # needs Debian's bible-kjv; writes tools/bench/prompts/*.txt

heldout.txt: the first third of the words of evenly spaced held-out verses (a continuation workload).
copy.txt:    a whole held-out verse, then the first third of it again (a copying workload, where
             prompt lookup can find the continuation in the prompt).
"""
import json, os, re, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SPLIT = json.load(open(os.path.join(HERE, "..", "models", "split.json")))
verses = []
for book in SPLIT["heldout_books"]:
    ref = book.replace(" ", "").lower()
    out = subprocess.run(["bible", "-l", "100000", "%s1:1-%s150:200" % (ref, ref)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            verses.append(" ".join(m.group(1).split()))


def first_third(v):
    w = v.split()
    return " ".join(w[:max(3, len(w) // 3)])


def spaced(n):
    return [verses[i * len(verses) // n] for i in range(n)]


os.makedirs(os.path.join(HERE, "prompts"), exist_ok=True)
with open(os.path.join(HERE, "prompts", "heldout.txt"), "w") as f:
    for v in spaced(64):
        f.write(first_third(v) + "\n")
with open(os.path.join(HERE, "prompts", "copy.txt"), "w") as f:
    for v in spaced(32):
        f.write(v + " " + first_third(v) + "\n")
print("%d held-out verses -> prompts/heldout.txt (64), prompts/copy.txt (32)" % len(verses))
