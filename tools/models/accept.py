#!/usr/bin/python3
"""Greedy per-token acceptance of a draft against a target (torch, fp32).

For held-out prompts (first third of each held-out verse, <s> prepended; or --prompts FILE, e.g. the second
edition's passage prompts tools/bench/prompts/passages.txt, generating up to the target's context) the target generates greedily
up to --max-new tokens or </s> (with --ignore-eos, --max-new tokens: but the models were never trained on
what follows </s> — training always feeds <s> there and does not score it — so they emit </s> again and again); acceptance = fraction of those generated positions where the draft's
argmax, given the same prefix, equals the target's token. Also reports the mean number of tokens per
target call a greedy speculative decoder with k proposals would get: E = sum_{i=0..k} P(first i accepted).

  accept.py --draft work/draft/ckpt.pt --target work/target/ckpt.pt [--n 100]
"""
import argparse, json, os, sys
import torch

torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_checkpoint  # noqa: E402
import data  # noqa: E402


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--draft", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--max-new", type=int, default=48)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--prompts", default=None,
                    help="prompt file, one a line, backslash-n = newline (e.g. tools/bench/prompts/passages.txt: "
                         "held-out passages, second edition); default: the first third of held-out verses")
    ap.add_argument("--label", default=None, help="name of the draft in the report")
    a = ap.parse_args()
    draft, _ = load_checkpoint(a.draft)
    target, _ = load_checkpoint(a.target)
    hits, total, runs = 0, 0, []
    # generation stops at the target's context (prompt + generated tokens), 1024 for the second edition
    ctx = target.config.max_position_embeddings
    prompt_ids = data.file_prompts(a.prompts, a.n)[1] if a.prompts else data.heldout_prompts(a.n)
    for prompt in prompt_ids:
        ids = list(prompt)
        logits, past = target(torch.tensor([ids]))
        for _ in range(a.max_new):
            t = int(logits[0, -1].argmax())
            ids.append(t)
            if (t == data.EOS and not a.ignore_eos) or len(ids) >= ctx:
                break
            logits, past = target(torch.tensor([[t]]), past=past)
        dl, _ = draft(torch.tensor([ids[:-1]]))
        pred = dl[0, len(prompt) - 1:].argmax(-1).tolist()
        gen = ids[len(prompt):]
        ok = [int(p == g) for p, g in zip(pred, gen)]
        hits += sum(ok); total += len(ok); runs.append(ok)
    # expected tokens per verification call with k proposals (greedy): accepted prefix + 1 target token
    e, cnt = 0.0, 0
    for ok in runs:
        for i in range(len(ok)):
            j = 0
            while j < a.k and i + j < len(ok) and ok[i + j]:
                j += 1
            e += j + 1; cnt += 1
    res = {"draft": a.draft, "target": a.target, "label": a.label or a.draft, "prompt_file": a.prompts and os.path.relpath(os.path.abspath(a.prompts), data.ROOT),
           "context": ctx, "max_new": a.max_new,
           "ignore_eos": a.ignore_eos, "acceptance": hits / total, "positions": total, "prompts": len(runs),
           "k": a.k, "tokens_per_target_call": e / cnt}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
