#!/usr/bin/python3
"""Text sampled from a model at the serving temperature, for distilling the draft on model
generations rather than the corpus (DistillSpec, Zhou et al. 2023: distilling on the student's own
samples, "on-policy", raises speculative acceptance most; the teacher's samples also help, at the
teacher's sampling cost: ~260 tokens/s for the target here against several thousand for the draft).

Each row starts with the first --prompt tokens of a random training window (--data verses: a verse's
<s> onwards; --data passages, the second edition: <s> and a passage from a random verse on, as
train.py --data passages reads them), then the model samples at --temperature up to --seq tokens;
after a sampled </s> the next token is <s>, as in the training stream, and a new text is sampled. Rows are written to --out (uint16,
[rows, seq+1]) after every batch, so an interrupted run resumes where it stopped. Training
(train.py --samples) then scores these rows with the teacher.

  sample_text.py --model work/draft-kd/ckpt.pt --tokens 1e6 --out work/samples/draft-t08.npy
  sample_text.py --data passages --seq 512 --prompt 64 --model work/draft-kd-passages/ckpt.pt ...
"""
import argparse, os, sys, time
import numpy as np
import torch

torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_checkpoint  # noqa: E402
import data  # noqa: E402


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=float, default=5e5)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", choices=["verses", "passages"], default="verses")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    model, _ = load_checkpoint(a.model)
    if a.data == "passages":  # window at verse k: [<s>] + pre[k] + stream[vend[k]:] (train.get_batch_passages)
        stream, pre, vend, _ = data.load_passages("train", 1024)
        ok = np.nonzero(vend + a.prompt <= len(stream))[0]
        window = lambda k: np.concatenate([[data.BOS], pre[k], stream[vend[k]:vend[k] + a.prompt]])[:a.prompt]
    else:
        stream, starts, _ = data.load("train")
        ok = starts[starts + a.prompt <= len(stream)]
        window = lambda i: stream[i:i + a.prompt]
    rows = np.load(a.out) if os.path.exists(a.out) else np.zeros((0, a.seq + 1), dtype=np.uint16)
    want = int(a.tokens // a.seq)
    t0, start_rows = time.time(), len(rows)
    while len(rows) < want:
        chunk = len(rows) // a.batch
        g = torch.Generator().manual_seed(a.seed * 1000003 + chunk)
        rng = np.random.default_rng(a.seed * 1000003 + chunk)
        idx = ok[rng.integers(0, len(ok), size=a.batch)]
        ids = torch.from_numpy(np.stack([window(i) for i in idx]).astype(np.int64))
        out = [ids]
        logits, past = model(ids)
        new_tokens = a.seq + 1 - a.prompt
        for i in range(new_tokens):
            probs = torch.softmax(logits[:, -1] / a.temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=g)
            prev = out[-1][:, -1:]
            nxt = torch.where(prev == data.EOS, torch.full_like(nxt, data.BOS), nxt)  # </s> is followed by <s>
            out.append(nxt)
            if i < new_tokens - 1:
                logits, past = model(nxt, past=past)
        batch = torch.cat(out, 1).numpy().astype(np.uint16)
        rows = np.concatenate([rows, batch])
        np.save(a.out + ".tmp.npy", rows)
        os.replace(a.out + ".tmp.npy", a.out)
        done = len(rows) * a.seq
        print("rows %d tokens %.2fM tok/s %.0f" % (len(rows), done / 1e6, (len(rows) - start_rows) * a.seq / (time.time() - t0)),
              flush=True)


if __name__ == "__main__":
    main()
