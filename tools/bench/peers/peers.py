#!/usr/bin/python3
"""The HTTP side of the llama.cpp comparison (issue 17); standard library only, runs on the host.

  parity  CHROOT GGUF TANDEM_URL PROMPT_FILE...   llama-tokenize (in the chroot) against Tandem's /tokenize
  greedy  TANDEM_URL NAME=LLAMA_URL... --tokens N --prompts FILE --out CSV
          greedy ids from Tandem's TGI /generate (plain) against each llama-server's /completion
  timing  --runs R --tokens N --prompts FILE --count P --out CSV  CONFIG...
          CONFIG = name=tandem:K:URL  (K=0: plain; auto: assisted with the draft, k as the service's policy
                                       chooses it (tandem.assisted.policy, auto by default); else constant k=K)
                 | name=llama:URL     (a llama-server, speculative or not as it was started)
          every run goes through the configs in a rotating order; a run of a config = its P prompts one
          after the other, each a greedy completion of exactly N tokens (EOS ignored), timed by this client
          from request to full answer (prefill and HTTP included). tokens/s = P*N / sum of the P times.

  summary --out-dir DIR ...                        compare.sh's table from its raw files

Prints markdown; writes CSV rows.
"""
import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request


def post(url, body, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def lines(paths):
    out = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            out += [l.rstrip("\n") for l in f if l.strip()]
    return out


def parity(a):
    """Same token ids for every prompt line, BOS included, from both tokenizers."""
    seen, same, diffs = set(), 0, []
    for text in lines(a.files):
        if text in seen:
            continue
        seen.add(text)
        out = subprocess.run(["chroot", a.chroot, "llama-tokenize", "-m", a.gguf, "--ids", "--log-disable",
                              "--no-escape", "--stdin"], input=text.encode(), capture_output=True, check=True)
        ids_llama = json.loads(out.stdout.decode().strip().splitlines()[-1])
        ids_tandem = [s["id"] for s in post(a.tandem + "/tokenize", {"inputs": text})]
        if ids_llama == ids_tandem:
            same += 1
        else:
            diffs.append((text, ids_tandem, ids_llama))
    print("token parity: %d/%d strings give the same ids (llama-tokenize vs Tandem /tokenize, BOS included)"
          % (same, len(seen)))
    for text, t, l in diffs[:10]:
        print("  DIFF %r\n    tandem %s\n    llama  %s" % (text, t, l))
    return 0 if not diffs else 1


def tandem_ids(url, prompt, n):
    """Greedy ids and, per position, Tandem's probabilities of its 5 likeliest tokens {id: p}."""
    r = post(url + "/generate", {"inputs": prompt, "parameters": {"max_new_tokens": n, "details": True,
                                                                  "top_n_tokens": 5}})
    tops = [{x["id"]: math.exp(x["logprob"]) for x in top} for top in r["details"]["top_tokens"]]
    return [t["id"] for t in r["details"]["tokens"]], tops


def llama_ids(url, prompt, n):
    r = post(url + "/completion", {"prompt": prompt, "n_predict": n, "temperature": 0, "top_k": 1,
                                   "cache_prompt": False, "return_tokens": True})
    return list(r["tokens"])


def strip_eos(ids, eos=2):
    return ids[:-1] if ids and ids[-1] == eos else ids


def greedy(a):
    """Greedy ids of Tandem (plain) and of each llama-server on the same prompts: equal, or where they part."""
    prompts = lines([a.prompts])[: a.count]
    peers = [p.split("=", 1) for p in a.llama]
    rows = []
    for i, prompt in enumerate(prompts):
        t, tops = tandem_ids(a.tandem, prompt, a.tokens)
        t = strip_eos(t)
        for name, url in peers:
            l = strip_eos(llama_ids(url, prompt, a.tokens))
            first = next((j for j in range(min(len(t), len(l))) if t[j] != l[j]), None)
            if first is None and len(t) != len(l):
                first = min(len(t), len(l))
            # where they part, how close Tandem's own choice was: its probability of its token and of llama.cpp's
            p_own = p_peer = ""
            if first is not None and first < len(t) and first < len(l):
                p_own = round(tops[first].get(t[first], 0.0), 4)
                p_peer = round(tops[first].get(l[first], 0.0), 4)  # 0: not in Tandem's top 5
            rows.append({"prompt": i, "peer": name, "tandem_tokens": len(t), "peer_tokens": len(l),
                         "equal": first is None, "first_difference": "" if first is None else first,
                         "tandem_p_own": p_own, "tandem_p_peer": p_peer})
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("| llama.cpp model | greedy ids equal to Tandem's (up to %d tokens, EOS honoured) | where the others part "
          "(token index, median) | Tandem's probability of its token − of llama.cpp's there, max |" % a.tokens)
    print("| --- | --- | --- | --- |")
    for name, _ in peers:
        mine = [r for r in rows if r["peer"] == name]
        parts = sorted(r["first_difference"] for r in mine if not r["equal"])
        gaps = [r["tandem_p_own"] - r["tandem_p_peer"] for r in mine if r["tandem_p_own"] != ""]
        print("| %s | %d/%d | %s (%s) | %s |" % (
            name, sum(r["equal"] for r in mine), len(mine), ", ".join(map(str, parts)) or "–",
            statistics.median(parts) if parts else "–", "%.3f" % max(gaps) if gaps else "–"))


def one_completion(kind, url, k, prompt, n):
    """(seconds, tokens, drafted, accepted) of one greedy completion of exactly n tokens."""
    t0 = time.perf_counter()
    if kind == "tandem":
        p = {"max_new_tokens": n, "ignore_eos": True}
        if k == "auto":
            p.update({"assisted": True, "assistant": "draft"})
        elif k:
            p.update({"assisted": True, "assistant": "draft", "num_assistant_tokens": k,
                      "assistant_schedule": "constant"})
        r = post(url + "/generate", {"inputs": prompt, "parameters": p})
        dt = time.perf_counter() - t0
        d = r.get("decoding") or {}
        return dt, n, d.get("num_draft_tokens", 0), d.get("num_accepted_tokens", 0)
    r = post(url + "/completion", {"prompt": prompt, "n_predict": n, "temperature": 0, "top_k": 1,
                                   "ignore_eos": True, "cache_prompt": False})
    dt = time.perf_counter() - t0
    tm = r.get("timings") or {}
    return dt, r.get("tokens_predicted", n), tm.get("draft_n", 0), tm.get("draft_n_accepted", 0)


CLK_TCK = 100  # USER_HZ: the unit of /proc/stat and /proc/PID/stat times on Linux


def busy_ticks():
    """Non-idle CPU time of the whole machine (all cores) so far, in ticks."""
    f = open("/proc/stat").readline().split()[1:9]
    v = list(map(int, f))
    return sum(v) - v[3] - v[4]  # minus idle and iowait


def own_ticks(pids):
    """CPU time (user + system) of the servers under test and of this client, in ticks."""
    total = 0
    for pid in pids:
        try:
            st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            total += int(st[11]) + int(st[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError):
            pass
    t = os.times()
    return total + round((t.user + t.system) * CLK_TCK)


def timing(a):
    """Each config-run also records the CPU time spent by processes other than the servers and this client
    (foreign_share: that time over wall time x cores). llama.cpp at -t 2 on 2 cores is slowed many times by a
    little foreign work, so runs above --max-foreign are reported but left out of the medians."""
    pids = [int(p) for p in a.own_pids.split(",") if p]
    ncpu = os.cpu_count() or 1
    prompts = lines([a.prompts])[: a.count]
    configs = []
    for c in a.configs:
        name, spec = c.split("=", 1)
        kind, rest = spec.split(":", 1)
        k = 0
        if kind == "tandem":
            k, rest = rest.split(":", 1)
            k = k if k == "auto" else int(k)
        configs.append((name, kind, rest, k))
    for name, kind, url, k in configs:  # warm-up: JIT, caches, first-call allocations
        for prompt in prompts[:2]:
            one_completion(kind, url, k, prompt, a.tokens)
    rows = []
    for run in range(a.runs):
        order = configs[run % len(configs):] + configs[:run % len(configs)]
        for name, kind, url, k in order:
            secs = toks = drafted = accepted = 0
            busy0, own0, wall0 = busy_ticks(), own_ticks(pids), time.perf_counter()
            for prompt in prompts:
                dt, n, dr, ac = one_completion(kind, url, k, prompt, a.tokens)
                if n != a.tokens:
                    raise SystemExit("%s gave %d tokens instead of %d" % (name, n, a.tokens))
                secs += dt
                toks += n
                drafted += dr
                accepted += ac
            foreign = max(0, (busy_ticks() - busy0) - (own_ticks(pids) - own0)) / CLK_TCK
            share = foreign / ((time.perf_counter() - wall0) * ncpu)
            rows.append({"run": run + 1, "config": name, "prompts": len(prompts), "tokens": toks,
                         "seconds": round(secs, 4), "tokens_per_s": round(toks / secs, 2),
                         "acceptance": round(accepted / drafted, 3) if drafted else "",
                         "foreign_cpu_s": round(foreign, 2), "foreign_share": round(share, 3),
                         "kept": share <= a.max_foreign})
            print("run %d %-24s %8.1f tokens/s  foreign CPU %.2f s (%.1f%%)%s" % (
                run + 1, name, toks / secs, foreign, 100 * share, "" if share <= a.max_foreign else "  DISTURBED"),
                file=sys.stderr)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("| configuration | greedy tokens/s, median of the undisturbed runs (min–max) | runs kept | acceptance |")
    print("| --- | --- | --- | --- |")
    for name, *_ in configs:
        mine = [r for r in rows if r["config"] == name and r["kept"]]
        tps = [r["tokens_per_s"] for r in mine]
        acc = [r["acceptance"] for r in mine if r["acceptance"] != ""]
        print("| %s | %s | %d/%d | %s |" % (
            name, "%.1f (%.1f–%.1f)" % (statistics.median(tps), min(tps), max(tps)) if tps else "–",
            len(mine), a.runs, "%.3f" % statistics.median(acc) if acc else "–"))


def summary(a):
    """The issue's table from compare.sh's raw files: llama-bench JSON, DecodeBenchmark CSV, the HTTP CSV."""
    med = statistics.median
    bench = {}  # (model, test) -> median ms of one test
    for name in ("llama-bench-tg.json", "llama-bench-pp.json"):
        for r in json.load(open("%s/%s" % (a.out_dir, name))):
            fmt = "Q8_0" if "q8_0" in r["model_filename"] else "Q4_0" if "q4_0" in r["model_filename"] else "F32"
            test = "tg" if r["n_gen"] else "pp%d" % r["n_prompt"]
            per = r["n_gen"] if r["n_gen"] else 1
            bench[(fmt, test)] = med(r["samples_ns"]) / per / 1e6
    with open("%s/tandem-decode.csv" % a.out_dir) as f:
        dec = next(csv.DictReader(f))
    tandem = {"tg": float(dec["decode_ms_median"]), "pp1": float(dec["verify_fed1_ms"]),
              "pp6": float(dec["verify_fed6_ms"])}
    with open("%s/http.csv" % a.out_dir) as f:
        every = list(csv.DictReader(f))
    http = [r for r in every if r.get("kept", "True") == "True"]  # runs no foreign work disturbed

    def kept(prefix):
        return "%d/%d" % (sum(r["config"].startswith(prefix) for r in http), sum(r["config"].startswith(prefix) for r in every))

    def tps(prefix):
        plain_rows = [float(r["tokens_per_s"]) for r in http if r["config"] == prefix + " plain"]
        spec_rows = [r for r in http if r["config"].startswith(prefix + " draft")]
        if not plain_rows or not spec_rows:
            raise SystemExit("%s: every HTTP run was disturbed by other work; run again on a quiet machine" % prefix)
        plain = med(plain_rows)
        spec = med(float(r["tokens_per_s"]) for r in spec_rows)
        acc = [float(r["acceptance"]) for r in spec_rows if r["acceptance"]]
        return plain, spec, (med(acc) if acc else None)

    cols = [("Tandem (ONNX Runtime, %s)" % a.tandem_label, tandem, tps("tandem")),
            ("llama.cpp F32", {t: bench[("F32", t)] for t in ("tg", "pp1", "pp6")}, tps("llama.cpp F32")),
            ("llama.cpp Q8_0", {t: bench[("Q8_0", t)] for t in ("tg", "pp1", "pp6")}, tps("llama.cpp Q8_0"))]
    if ("Q4_0", "tg") in bench:  # the target re-quantised to 4 bits, with the Q8_0 draft
        cols.append(("llama.cpp Q4_0", {t: bench[("Q4_0", t)] for t in ("tg", "pp1", "pp6")}, tps("llama.cpp Q4_0")))
    out = ["Run %s; 2 threads; %d runs; HTTP: %d held-out prompts x %d greedy tokens (EOS ignored), speculative k = %d."
           % (a.when, a.runs, a.count, a.tokens, a.k), ""]
    warn = open(a.warnings).read().strip() if a.warnings else ""
    if warn:
        out += ["**" + line + "**" for line in warn.splitlines()] + [""]
    out.append("| | " + " | ".join(c[0] for c in cols) + " |")
    out.append("| --- |" + " --- |" * len(cols))
    out.append("| plain decode ms/token | " + " | ".join("%.2f" % c[1]["tg"] for c in cols) + " |")
    out.append("| greedy tokens/s over HTTP, plain → speculative (k=%d, same draft) | " % a.k + " | ".join(
        "%.0f → %.0f (%.2fx)" % (c[2][0], c[2][1], c[2][1] / c[2][0]) for c in cols) + " |")
    out.append("| HTTP runs kept (no foreign work) | " + " | ".join(
        kept(p) for p in ("tandem", "llama.cpp F32", "llama.cpp Q8_0", "llama.cpp Q4_0")[:len(cols)]) + " |")
    out.append("| acceptance of the draft's tokens | " + " | ".join(
        "%.3f" % c[2][2] if c[2][2] is not None else "–" for c in cols) + " |")
    out.append("| one forward of 1 / of 6 tokens after 30, ms | " + " | ".join(
        "%.2f / %.2f" % (c[1]["pp1"], c[1]["pp6"]) for c in cols) + " |")
    out.append("| one forward of 6 tokens ÷ one of 1 | " + " | ".join(
        "%.2f" % (c[1]["pp6"] / c[1]["pp1"]) for c in cols) + " |")
    q8_plain_ms, q8_plain_tps = cols[2][1]["tg"], cols[2][2][0]
    out += ["", "Goals of issue 17 (same run):",
            "- Tandem plain ms/token ≤ llama.cpp Q8_0's: %.2f vs %.2f: %s" % (
                tandem["tg"], q8_plain_ms, "met" if tandem["tg"] <= q8_plain_ms else "not met"),
            "- Tandem assisted tokens/s ≥ 1.5x llama.cpp Q8_0 plain: %.0f vs %.0f (%.2fx): %s" % (
                cols[0][2][1], q8_plain_tps, cols[0][2][1] / q8_plain_tps,
                "met" if cols[0][2][1] >= 1.5 * q8_plain_tps else "not met"),
            "- Tandem forward of 6 ≤ 1.5x a forward of 1: %.2fx: %s" % (
                tandem["pp6"] / tandem["pp1"], "met" if tandem["pp6"] <= 1.5 * tandem["pp1"] else "not met")]
    auto = [float(r["tokens_per_s"]) for r in http if r["config"] == "tandem auto"]
    if auto:
        out.append("- Tandem assisted under its own policy (auto k; the service's default) against llama.cpp Q8_0 plain: "
                   "%.0f vs %.0f (%.2fx)" % (med(auto), q8_plain_tps, med(auto) / q8_plain_tps))
    if len(cols) > 3:
        out.append("- (4-bit against 4-bit) Tandem plain ms/token against llama.cpp Q4_0's: %.2f vs %.2f; Tandem assisted "
                   "tokens/s against llama.cpp Q4_0 plain: %.2fx" % (tandem["tg"], cols[3][1]["tg"], cols[0][2][1] / cols[3][2][0]))
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("chroot")
    p.add_argument("gguf")
    p.add_argument("tandem")
    p.add_argument("files", nargs="+")
    g = sub.add_parser("greedy")
    g.add_argument("tandem")
    g.add_argument("llama", nargs="+", help="name=URL of a llama-server")
    g.add_argument("--tokens", type=int, default=64)
    g.add_argument("--prompts", required=True)
    g.add_argument("--count", type=int, default=1000)
    g.add_argument("--out", required=True)
    t = sub.add_parser("timing")
    t.add_argument("configs", nargs="+")
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--tokens", type=int, default=256)
    t.add_argument("--prompts", required=True)
    t.add_argument("--count", type=int, default=8)
    t.add_argument("--out", required=True)
    t.add_argument("--own-pids", default="", help="comma-separated pids of the servers under test")
    t.add_argument("--max-foreign", type=float, default=0.02,
                   help="drop a run from the medians when other processes used more than this share of the CPU")
    s = sub.add_parser("summary")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--k", type=int, required=True)
    s.add_argument("--tokens", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--runs", type=int, required=True)
    s.add_argument("--when", default="")
    s.add_argument("--warnings", default="")
    s.add_argument("--tandem-label", default="model_optimized.onnx, int4",
                   help="how the Tandem column is headed: the graph its service and DecodeBenchmark ran")
    a = ap.parse_args()
    return {"parity": parity, "greedy": greedy, "timing": timing, "summary": summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
