#!/usr/bin/python3
"""Train a Llama model on the KJV training verses (or distil from a teacher checkpoint).

AdamW, linear warmup + cosine decay to 10% over --tokens, fp32 on CPU (2 threads).
Checkpoints atomically to <out>/ckpt.pt every --ckpt-minutes and at the end; rerunning the
same command resumes from it (same data order: batch k is drawn with seed+k).
Log lines: step, tokens, loss, lr, tokens/s. Held-out per-verse perplexity at each checkpoint.

  train.py --preset draft --tokens 9e6 --batch 32 --lr 3e-3 --out work/draft
  train.py --bench 60 --preset t-512x8 --batch 16        # throughput only, no checkpoint
  train.py --data passages --seq 1024 --init work/target-v1/ckpt.pt ...   # second edition (NOTES.md "Passages")

--data verses (first edition): windows start at a random verse's <s>. --data passages: the stream is made of
passages (a chapter's verses joined with "\n", <s> ... </s>, cut to fit the context); a window starts at a
random verse, re-encoded as the start of a text after <s> (data.load_passages). Held-out perplexity: per
verse always; in passage mode also per token over the held-out passages, each alone (`heldout_passage_ppl`).
"""
import argparse, json, math, os, shutil, sys, time
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("TANDEM_TORCH_THREADS", "2")))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Llama, load_checkpoint  # noqa: E402
import data  # noqa: E402


def get_batch(stream, starts, step, batch, seq, seed):
    rng = np.random.default_rng(seed * 1000003 + step)
    ok = starts[starts + seq + 1 <= len(stream)]
    idx = ok[rng.integers(0, len(ok), size=batch)]
    x = np.stack([stream[i:i + seq + 1] for i in idx]).astype(np.int64)
    x = torch.from_numpy(x)
    return x[:, :-1], x[:, 1:]


def get_batch_passages(stream, pre, vend, step, batch, seq, seed):
    """seq+1 tokens from a random verse on: <s>, the verse encoded as a fresh text, then the stream after it
    (the rest of its passage, </s>, the next passages). Same seeding as get_batch, so resume is exact."""
    rng = np.random.default_rng(seed * 1000003 + step)
    ok = np.nonzero(vend + seq + 1 <= len(stream))[0]
    ks = ok[rng.integers(0, len(ok), size=batch)]
    x = np.stack([np.concatenate([[data.BOS], pre[k], stream[vend[k]:vend[k] + seq - len(pre[k])]]) for k in ks])
    x = torch.from_numpy(x.astype(np.int64))
    return x[:, :-1], x[:, 1:]


def mix_samples(x, y, samples, step, a):
    """Replaces the last samples_frac of the batch with rows of teacher-sampled text (seeded by step)."""
    n = int(round(a.batch * a.samples_frac))
    if n == 0:
        return x, y
    rng = np.random.default_rng(a.seed * 7919 + step)
    rows = torch.from_numpy(samples[rng.integers(0, len(samples), size=n), :a.seq + 1].astype(np.int64))
    x, y = x.clone(), y.clone()
    x[-n:], y[-n:] = rows[:, :-1], rows[:, 1:]
    return x, y


@torch.no_grad()
def eval_ppl(model, docs, batch=32, limit=None):
    """Per-document perplexity per token: each held-out verse (or passage) alone, input <s> doc, predict doc </s>."""
    model.eval()
    docs = docs[::max(1, len(docs) // limit)][:limit] if limit else docs  # evenly spread subset
    nll, n = 0.0, 0
    for i in range(0, len(docs), batch):
        ch = docs[i:i + batch]
        L = max(len(d) for d in ch) + 1
        inp = torch.zeros(len(ch), L, dtype=torch.long)
        tgt = torch.full((len(ch), L), -100, dtype=torch.long)
        for j, d in enumerate(ch):
            inp[j, :len(d) + 1] = torch.tensor([data.BOS] + d)
            tgt[j, :len(d) + 1] = torch.tensor(d + [data.EOS])
        logits, _ = model(inp)
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100,
                               reduction="sum").item()
        n += int((tgt != -100).sum())
    model.train()
    return math.exp(nll / n)


def lr_at(step, total, warmup, lr):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="draft")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--tokens", type=float, default=5e6, help="total training tokens (schedule length)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--data", choices=["verses", "passages"], default="verses",
                    help="training documents: single verses (first edition) or passages of a chapter (second)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: env TANDEM_TORCH_THREADS or 2)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--eval-minutes", type=float, default=0,
                    help="evaluate held-out perplexity at a checkpoint only if this long since the last evaluation "
                         "(0 = at every checkpoint); the final checkpoint always evaluates")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after checkpointing) after this wall time of this run")
    ap.add_argument("--bench", type=float, default=0, help="measure tokens/s for this many seconds, then exit")
    ap.add_argument("--mirror", default=os.environ.get("TANDEM_CKPT_MIRROR", "/var/tmp/tandem-models"),
                    help="also keep a copy of ckpt.pt in <mirror>/<basename of out>/ (survives a fresh work tree); '' = off")
    ap.add_argument("--eval-limit", type=int, default=200, help="held-out verses evaluated at intermediate checkpoints (all at the end)")
    ap.add_argument("--teacher", default=None, help="teacher checkpoint for distillation")
    ap.add_argument("--kd-alpha", type=float, default=0.9, help="weight of KL(teacher||student); 1-alpha on CE")
    ap.add_argument("--kd-temp", type=float, default=1.0, help="temperature both distributions are compared at")
    ap.add_argument("--kd-loss", choices=["kl", "tvd"], default="kl",
                    help="kl: KL(teacher||student); tvd: total variation, 1 - the speculative acceptance rate at --kd-temp")
    ap.add_argument("--samples", default=None, help="rows of teacher-sampled text (sample_teacher.py) to train on")
    ap.add_argument("--samples-frac", type=float, default=0.5, help="fraction of each batch taken from --samples")
    ap.add_argument("--init", default=None, help="start from this checkpoint's weights (fresh optimizer and schedule); ignored on resume")
    a = ap.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.data == "passages":
        stream, pre, vend, _ = data.load_passages("train", a.seq)
        _, _, _, held_passages = data.load_passages("heldout", a.seq)
    else:
        stream, starts, _ = data.load("train")
    samples = np.load(a.samples) if a.samples else None
    _, _, held = data.load("heldout")
    tokens_per_step = a.batch * a.seq
    total_steps = int(a.tokens // tokens_per_step)
    # the context the model is exported with: the training windows', or the initial checkpoint's if longer (RoPE has no
    # learned positions: a fine-tune on shorter windows, as the second edition's on-policy round at 512, keeps the
    # 1024 its init was trained at; recording 512 had exported a draft that refused positions past 512)
    context = a.seq
    if a.init:
        context = max(context, torch.load(a.init, map_location="cpu")["config"]["max_position_embeddings"])
    cfg = Config.preset(a.preset, tie_word_embeddings=not a.untied, max_position_embeddings=context)
    torch.manual_seed(a.seed)
    model = Llama(cfg)
    teacher = None
    if a.teacher:
        teacher, _ = load_checkpoint(a.teacher)
        for p in teacher.parameters():
            p.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    step, elapsed_prev, history = 0, 0.0, []
    ck_path = os.path.join(a.out, "ckpt.pt") if a.out else None
    mirror = os.path.join(a.mirror, os.path.basename(os.path.normpath(a.out)), "ckpt.pt") if (a.out and a.mirror) else None
    src = ck_path if ck_path and os.path.exists(ck_path) else (mirror if mirror and os.path.exists(mirror) else None)
    if src:
        ck = torch.load(src, map_location="cpu")
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, elapsed_prev, history = ck["step"], ck["elapsed"], ck.get("history", [])
        os.makedirs(a.out, exist_ok=True)
        print("resumed from %s at step %d (%.1f min trained)" % (src, step, elapsed_prev / 60), flush=True)
    else:
        if a.init:
            model.load_state_dict(torch.load(a.init, map_location="cpu")["model"])
            print("initialised from %s" % a.init, flush=True)
        if a.out:
            os.makedirs(a.out, exist_ok=True)
    print("preset %s tied=%s params %d; batch %dx%d = %d tok/step; steps %d (%.2fM tokens = %.2f epochs of %d)"
          % (a.preset, cfg.tie_word_embeddings, model.num_params(), a.batch, a.seq, tokens_per_step, total_steps,
             total_steps * tokens_per_step / 1e6, total_steps * tokens_per_step / len(stream), len(stream)), flush=True)

    last_eval = [0.0]

    def checkpoint(final=False):
        evaluate = final or time.time() - last_eval[0] >= a.eval_minutes * 60
        key, ppl, entry = None, None, {}
        if evaluate:
            last_eval[0] = time.time()
            ppl = eval_ppl(model, held, limit=None if final else a.eval_limit)
            key = "heldout_ppl" if final or not a.eval_limit else "heldout%d_ppl" % a.eval_limit
            entry = {"step": step, "tokens": step * tokens_per_step, key: ppl}
            if a.data == "passages":  # all 30 held-out passages every time (~20k tokens)
                entry["heldout_passage_ppl"] = eval_ppl(model, held_passages, batch=4)
            entry["minutes"] = (elapsed_prev + time.time() - t0) / 60
            history.append(entry)
        save(ck_path, {"model": model.state_dict(), "opt": opt.state_dict(), "config": cfg.__dict__,
                       "step": step, "total_steps": total_steps, "elapsed": elapsed_prev + time.time() - t0,
                       "history": history, "args": vars(a), "done": final})
        if mirror:
            os.makedirs(os.path.dirname(mirror), exist_ok=True)
            shutil.copyfile(ck_path, mirror + ".tmp")
            os.replace(mirror + ".tmp", mirror)
        if not evaluate:
            print("checkpoint step %d" % step, flush=True)
            return
        print("checkpoint step %d %s %.3f%s%s" % (step, key, ppl, "".join(" %s %.3f" % (k, v) for k, v in entry.items()
              if k == "heldout_passage_ppl"), " (final)" if final else ""), flush=True)

    model.train()
    t0 = time.time(); t_last_ck = t0; t_log = t0; tok_log = 0; loss_acc, n_acc = 0.0, 0
    bench_t0, bench_steps = None, 0
    while step < total_steps or a.bench:
        if a.data == "passages":
            x, y = get_batch_passages(stream, pre, vend, step, a.batch, a.seq, a.seed)
        else:
            x, y = get_batch(stream, starts, step, a.batch, a.seq, a.seed)
        if samples is not None:
            x, y = mix_samples(x, y, samples, step, a)
        lr = lr_at(step, total_steps, a.warmup, a.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        logits, _ = model(x)
        y = y.masked_fill(y == data.BOS, -100)  # the <s> after </s> is not a prediction target
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        loss = ce
        if teacher is not None:
            with torch.no_grad():
                tl, _ = teacher(x)
            T = a.kd_temp
            m = (y != -100).reshape(-1)
            if a.kd_loss == "tvd":
                kl = 0.5 * (F.softmax(logits.reshape(-1, logits.shape[-1])[m] / T, -1)
                            - F.softmax(tl.reshape(-1, tl.shape[-1])[m] / T, -1)).abs().sum(-1).mean()
            else:
                kl = F.kl_div(F.log_softmax(logits.reshape(-1, logits.shape[-1])[m] / T, -1),
                              F.log_softmax(tl.reshape(-1, tl.shape[-1])[m] / T, -1), log_target=True,
                              reduction="batchmean") * T * T
            loss = a.kd_alpha * kl + (1 - a.kd_alpha) * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1; tok_log += tokens_per_step; loss_acc += ce.item(); n_acc += 1
        now = time.time()
        if a.bench:
            if bench_t0 is None and step == 2:
                bench_t0 = now
            elif bench_t0 is not None:
                bench_steps += 1
                if now - bench_t0 >= a.bench:
                    tps = bench_steps * tokens_per_step / (now - bench_t0)
                    print("BENCH preset=%s tied=%s params=%d batch=%d seq=%d teacher=%s tokens/s=%.0f ms/step=%.0f loss=%.3f"
                          % (a.preset, cfg.tie_word_embeddings, model.num_params(), a.batch, a.seq, bool(teacher), tps,
                             1000 * (now - bench_t0) / bench_steps, ce.item()), flush=True)
                    return
            continue
        if now - t_log >= 30 or step == total_steps:
            print("step %d/%d tokens %.2fM ce %.4f lr %.2e tok/s %.0f elapsed %.1f min"
                  % (step, total_steps, step * tokens_per_step / 1e6, loss_acc / n_acc, lr, tok_log / (now - t_log),
                     (elapsed_prev + now - t0) / 60), flush=True)
            t_log, tok_log, loss_acc, n_acc = now, 0, 0.0, 0
        if ck_path and (now - t_last_ck >= a.ckpt_minutes * 60):
            checkpoint(); t_last_ck = time.time()
        if a.max_minutes and now - t0 >= a.max_minutes * 60 and step < total_steps:
            checkpoint(); print("stopping: --max-minutes reached; rerun to resume", flush=True)
            return
    if ck_path:
        checkpoint(final=True)


if __name__ == "__main__":
    main()
