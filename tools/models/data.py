"""Tokenized corpus: every verse is a document <s> verse </s>; the training stream is all
training verses concatenated in canonical order. Training windows (seq+1 tokens) always
start at a verse's <s>, at a random verse each time, so position 0 is <s> as at inference
and later verses in the window see the preceding verses as context."""
import os
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
