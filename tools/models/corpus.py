#!/usr/bin/python3
"""Build the KJV corpus: one verse per line, split into train / held-out by book (split.json).

Output (work/corpus/): train.txt, heldout.txt (verse text only), train_meta.tsv / heldout_meta.tsv
(book, chapter, verse, text).  Source: `bible -l 100000 gen1:1-rev22:21` (Debian bible-kjv).
"""
import json, os, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "work", "corpus")


def read_bible():
    raw = subprocess.run(["bible", "-l", "100000", "gen1:1-rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    verses, book, chap = [], None, None
    head = re.compile(r"^(\S.*) (\d+)$")
    verse = re.compile(r"^\s+(\d+) (.*)$")
    for line in raw.split("\n"):
        if not line.strip():
            continue
        m = head.match(line)
        if m:
            book, chap = m.group(1), int(m.group(2))
            continue
        m = verse.match(line)
        if not m:
            raise SystemExit("unparsed line: %r" % line)
        text = " ".join(m.group(2).split())
        verses.append((book, chap, int(m.group(1)), text))
    return verses


def main():
    split = json.load(open(os.path.join(HERE, "split.json")))
    held = set(split["heldout_books"])
    verses = read_bible()
    books = {v[0] for v in verses}
    missing = held - books
    if missing:
        raise SystemExit("held-out books not found: %s" % missing)
    os.makedirs(OUT, exist_ok=True)
    n = {"train": 0, "heldout": 0}
    files = {k: (open(os.path.join(OUT, k + ".txt"), "w"), open(os.path.join(OUT, k + "_meta.tsv"), "w"))
             for k in n}
    for b, c, v, t in verses:
        k = "heldout" if b in held else "train"
        files[k][0].write(t + "\n")
        files[k][1].write("%s\t%d\t%d\t%s\n" % (b, c, v, t))
        n[k] += 1
    for f, g in files.values():
        f.close(); g.close()
    print("verses: total %d, train %d, heldout %d, books %d" % (len(verses), n["train"], n["heldout"], len(books)))


if __name__ == "__main__":
    main()
