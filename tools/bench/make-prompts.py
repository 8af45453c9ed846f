#!/usr/bin/env python3
"""Benchmark prompts from the books the bundled models never saw (tools/models/split.json).

  tools/bench/make-prompts.py      # needs Debian's bible-kjv; writes tools/bench/prompts/*.txt

heldout.txt: the first third of the words of evenly spaced held-out verses (a continuation workload).
copy.txt:    a whole held-out verse, then the first third of it again (a copying workload, where
             prompt lookup can find the continuation in the prompt).
passages.txt: 64 passages of held-out chapters as the second-edition models read them (verses joined with a
             newline), each ending a third of the way into a verse, of 50 to 250 tokens (evenly spread; counted with
             the bundled tokenizer.json, <s> included). One prompt per
             line; the two characters backslash-n stand for the newline between verses (the bench clients turn them
             back; no held-out verse contains a backslash).
"""
import json, os, re, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SPLIT = json.load(open(os.path.join(HERE, "..", "models", "split.json")))
verses = []
chapters = []   # the held-out chapters, each a list of verses
for book in SPLIT["heldout_books"]:
    ref = book.replace(" ", "").lower()
    out = subprocess.run(["bible", "-l", "100000", "%s1:1-%s150:200" % (ref, ref)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            verses.append(" ".join(m.group(1).split()))
            chapters[-1].append(verses[-1])
        elif line.strip():
            chapters.append([])   # a chapter heading ("Ruth 1")


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


def passages(n, lo, hi):
    """n prompts of lo..hi tokens (evenly spread): verses of one chapter from a spaced start, then a third of the next."""
    import sys
    sys.path.insert(0, os.path.join(HERE, "..", "models"))
    from tokenizer import HFBPE   # tokenizer.json's own algorithm (a newline is a byte token; sentencepiece's encode
    bpe = HFBPE(os.path.join(HERE, "..", "..", "models", "kjv-target", "tokenizer.json"))   # would normalise it away)
    ntok = lambda text: len(bpe.encode(text))   # with <s>
    starts = [(c, v) for c, ch in enumerate(chapters) for v in range(len(ch))]
    out = []
    for i in range(n):
        want = lo + (hi - lo) * i // max(1, n - 1)
        j = i * len(starts) // n
        while True:   # from this start, the longest run of whole verses + a third that stays within `want`
            c, v = starts[j % len(starts)]
            ch = chapters[c]
            best = None
            for end in range(v, len(ch)):
                text = "\n".join(ch[v:end] + [first_third(ch[end])])
                if ntok(text) > want:
                    break
                best = text
            if best is not None and ntok(best) >= max(lo, want * 0.9):
                out.append(best)
                break
            j += 1   # a chapter too short from here: the next start
    return out


with open(os.path.join(HERE, "prompts", "passages.txt"), "w") as f:
    ps = passages(64, 50, 250)
    for p in ps:
        assert "\\" not in p
        f.write(p.replace("\n", "\\n") + "\n")
print("%d held-out chapters -> prompts/passages.txt (64, %d..%d words)"
      % (len(chapters), min(len(p.split()) for p in ps), max(len(p.split()) for p in ps)))
print("%d held-out verses -> prompts/heldout.txt (64), prompts/copy.txt (32)" % len(verses))
