"""Tokenized corpus, two editions.

Verses (first edition, `load`): every verse is a document <s> verse </s>; the training stream is all
training verses concatenated in canonical order. Training windows (seq+1 tokens) always
start at a verse's <s>, at a random verse each time, so position 0 is <s> as at inference
and later verses in the window see the preceding verses as context.

Passages (second edition, `load_passages`): a chapter's verses joined with "\n" (verse numbers out) are
one document <s> chapter </s>; a chapter longer than the context is cut at verse boundaries into nearly
equal passages, each <s> passage </s> within seq+1 tokens. The tokenizer has no newline piece: "\n" is
the byte token <0x0A> (id 13), and the word after it gets no leading-space marker ("\nAnd" -> <0x0A> A nd),
exactly as the service's tokenizer.json encodes a multi-line prompt. Since no piece contains a newline,
encode("a\nb") == encode("a") + [13] + encode-without-dummy-prefix("b"); `load_passages` asserts it.
"""
import math, os
import numpy as np
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
BOS, EOS = 1, 2


def sp():
    return spm.SentencePieceProcessor(model_file=os.path.join(WORK, "tok", "kjv4096.model"))


def verses(split):
    return open(os.path.join(WORK, "corpus", split + ".txt")).read().splitlines()


def load(split):
    """Returns (stream uint16 array, verse start offsets int64 array, list of per-verse id lists)."""
    path = os.path.join(WORK, "data", split + ".npz")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ids = sp().encode(verses(split))
        starts, stream = [], []
        for v in ids:
            starts.append(len(stream))
            stream.extend([BOS] + v + [EOS])
        np.savez(path + ".tmp.npz", stream=np.array(stream, dtype=np.uint16), starts=np.array(starts, dtype=np.int64))
        os.replace(path + ".tmp.npz", path)
    z = np.load(path)
    stream, starts = z["stream"], z["starts"]
    ends = list(starts[1:]) + [len(stream)]
    docs = [stream[a + 1:b - 1].astype(np.int64).tolist() for a, b in zip(starts, ends)]
    return stream, starts, docs


def heldout_prompts(n):
    """Prompts for acceptance measurements: n verses spread evenly over the held-out books, each cut to its
    first third (at least 3 words), as token ids with <s> prepended."""
    tok = sp()
    held = verses("heldout")
    step = max(1, len(held) // n)
    out = []
    for v in held[::step][:n]:
        w = v.split()
        out.append([BOS] + tok.encode(" ".join(w[:max(3, len(w) // 3)])))
    return out


NL = 13  # <0x0A>
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository
PASSAGE_PROMPTS = os.path.join(ROOT, "tools", "bench", "prompts", "passages.txt")


def file_prompts(path, n=0):
    """Prompts from a text file, one a line, where the two characters backslash-n stand for the newline between
    verses (tools/bench/prompts/passages.txt: held-out passages ending inside a verse). Returns (texts, ids):
    n evenly spread lines (all if n <= 0), ids = [<s>] + the text encoded as one string, as the service's
    tokenizer.json encodes a multi-line prompt (no piece contains a newline: see the module doc)."""
    lines = [l.replace("\\n", "\n") for l in open(path).read().splitlines() if l.strip()]
    if 0 < n < len(lines):
        lines = [lines[i * len(lines) // n] for i in range(n)]
    tok = sp()
    return lines, [[BOS] + tok.encode(t) for t in lines]


def chapters(split):
    """[(book, chapter, [verse texts])] in canonical order, from work/corpus/<split>_meta.tsv."""
    out = []
    for line in open(os.path.join(WORK, "corpus", split + "_meta.tsv")).read().splitlines():
        b, c, _, t = line.split("\t")
        if not out or out[-1][:2] != (b, int(c)):
            out.append((b, int(c), []))
        out[-1][2].append(t)
    return out


def cut_chapter(pre, bare, limit):
    """Split a chapter (per-verse token lists: `pre` with the leading-space marker, `bare` without) into
    passages of whole verses whose text is at most `limit` tokens ("\n"-joined; the first verse of a passage
    is encoded with the marker, as a fresh text). Returns a list of (first, end) verse index ranges: the
    fewest passages that fit, balanced by filling each up to an equal share of the chapter."""
    n = len(pre)
    length = lambda a, b: len(pre[a]) + sum(len(bare[i]) + 1 for i in range(a + 1, b))
    total = length(0, n)
    if total <= limit:
        return [(0, n)]
    for parts in range(math.ceil(total / limit), n + 1):
        share, out, a = total / parts, [], 0
        while a < n:
            b = a + 1
            if length(a, b) > limit:
                raise SystemExit("a verse longer than the context (%d tokens)" % limit)
            while b < n and length(a, b + 1) <= min(limit, share * 1.02 if len(out) < parts - 1 else limit):
                b += 1
            out.append((a, b)); a = b
        if len(out) <= parts:
            return out
    raise AssertionError("unreachable")


def load_passages(split, seq):
    """Passage edition (see module doc). Returns (stream uint16, pre list, vend int64, passages) where
    stream = all passages <s> text </s> concatenated; for verse k (over the whole split), pre[k] is its
    encoding as the start of a text and vend[k] the stream offset just after it (its "\n" or </s>); a
    training window starting at verse k is [<s>] + pre[k] + stream[vend[k]:]. passages: token lists
    (text only, no <s>/</s>) for evaluation, one per passage."""
    path = os.path.join(WORK, "data", "%s_passages%d.npz" % (split, seq))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tok = sp()
        chs = chapters(split)
        flat = [t for _, _, vs in chs for t in vs]
        pre = tok.encode(flat)
        marker = tok.piece_to_id("\u2581")
        bare = []
        for t, e in zip(flat, tok.encode(["\n" + t for t in flat])):
            assert e[:2] == [marker, NL], e[:3]
            bare.append(e[2:])
        stream, vend, pstarts, k = [], [], [], 0
        for b, c, vs in chs:
            P, B = pre[k:k + len(vs)], bare[k:k + len(vs)]
            for a, e in cut_chapter(P, B, seq - 1):
                pstarts.append(len(stream))
                stream.append(BOS)
                for i in range(a, e):
                    if i > a:
                        stream.append(NL)
                    stream.extend(P[i] if i == a else B[i])
                    vend.append(len(stream))
                stream.append(EOS)
                if len(pstarts) <= 3 or (b, c) == chs[-1][:2]:  # spot check: the passage as one text
                    text = tok.encode("\n".join(vs[a:e]))
                    assert stream[pstarts[-1] + 1:-1] == text, (b, c)
            k += len(vs)
        pre_off = np.cumsum([0] + [len(p) for p in pre])
        np.savez(path + ".tmp.npz", stream=np.array(stream, dtype=np.uint16), vend=np.array(vend, dtype=np.int64),
                 pre=np.array([t for p in pre for t in p], dtype=np.uint16), pre_off=pre_off,
                 pstarts=np.array(pstarts, dtype=np.int64))
        os.replace(path + ".tmp.npz", path)
    z = np.load(path)
    stream, off, pstarts, flat = z["stream"], z["pre_off"], z["pstarts"], z["pre"]  # (each z[...] reads the file)
    pre = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    ends = list(pstarts[1:]) + [len(stream)]
    passages = [stream[a + 1:b - 1].astype(np.int64).tolist() for a, b in zip(pstarts, ends)]
    return stream, pre, z["vend"], passages
