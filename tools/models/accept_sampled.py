#!/usr/bin/python3
"""Per-token acceptance of speculative sampling, draft against target (torch, fp32).

For held-out prompts (first third of each held-out verse, <s> prepended; or --prompts FILE, e.g. the second
edition's passage prompts tools/bench/prompts/passages.txt, generating up to the target's context) the target samples a
continuation at --temperature (seeded) up to --max-new tokens or </s>. At every generated position
the expected acceptance of one speculative-sampling candidate is sum_x min(p(x), q(x)) = 1 - TV(p, q),
where p is the target's distribution at --temperature and q the draft's at a draft temperature
(each of --draft-temps). A draft temperature other than the request's keeps the output exact (q is
whatever the draft sampled from); this measures whether one would be accepted more often.

  accept_sampled.py --draft work/draft-kd/ckpt.pt --target work/target/ckpt.pt [--n 50]
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
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--draft-temps", default="0.6,0.7,0.8,0.9,1.0")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompts", default=None,
                    help="prompt file, one a line, backslash-n = newline (e.g. tools/bench/prompts/passages.txt: "
                         "held-out passages, second edition); default: the first third of held-out verses")
    ap.add_argument("--label", default=None)
    a = ap.parse_args()
    draft, _ = load_checkpoint(a.draft)
    target, _ = load_checkpoint(a.target)
    temps = [float(t) for t in a.draft_temps.split(",")]
    g = torch.Generator().manual_seed(a.seed)
    sums = {t: 0.0 for t in temps}
    positions, prompts = 0, 0
    # generation stops at the target's context (prompt + generated tokens), 1024 for the second edition
    ctx = target.config.max_position_embeddings
    prompt_ids = data.file_prompts(a.prompts, a.n)[1] if a.prompts else data.heldout_prompts(a.n)
    for prompt in prompt_ids:
        ids = list(prompt)
        logits, past = target(torch.tensor([ids]))
        rows = []
        for _ in range(a.max_new):
            row = logits[0, -1]
            rows.append(row)
            t = int(torch.multinomial(torch.softmax(row / a.temperature, -1), 1, generator=g))
            ids.append(t)
            if t == data.EOS or len(ids) >= ctx:
                break
            logits, past = target(torch.tensor([[t]]), past=past)
        p = torch.softmax(torch.stack(rows) / a.temperature, -1)
        dl, _ = draft(torch.tensor([ids[:-1]]))
        dl = dl[0, len(prompt) - 1:]
        for t in temps:
            q = torch.softmax(dl / t, -1)
            sums[t] += float(torch.minimum(p, q).sum())
        positions += p.shape[0]
        prompts += 1
    res = {"draft": a.draft, "target": a.target, "label": a.label or a.draft, "prompt_file": a.prompts and os.path.relpath(os.path.abspath(a.prompts), data.ROOT),
           "context": ctx, "max_new": a.max_new, "temperature": a.temperature,
           "prompts": prompts, "positions": positions,
           "acceptance_by_draft_temperature": {str(t): round(sums[t] / positions, 4) for t in temps}}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
