#!/usr/bin/python3
"""Train the shared BPE tokenizer (sentencepiece, vocab 4096, byte_fallback) on the training
verses and export it as a Llama-2-style Hugging Face tokenizer.json + tokenizer_config.json.

Then verify: a pure-Python re-implementation of HF tokenizers' BPE-with-merges (with the
normalizer/post-processor of tokenizer.json) must give the same ids as sentencepiece on
held-out (and some training) verses, and decoding must round-trip.

Outputs: work/tok/kjv4096.model (+.vocab), work/tok/tokenizer.json, work/tok/tokenizer_config.json
"""
import json, os, shutil, sys
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "work", "corpus")
OUT = os.path.join(HERE, "work", "tok")
VOCAB = 4096
MAX_LEN = 1024  # model context length (model_max_length); the first edition's was 256
# The models are passage models (second edition), not instruction-tuned: a chapter's verses joined with "\n", </s>
# only where the chapter ends. A chat is one passage: each message is one or more verses, messages are joined with
# "\n", and the generation prompt is the "\n" that starts the next verse, so the answer continues the passage (the
# first edition closed every assistant message with </s><s>, and a user message ending a verse often got </s> at
# once: an empty reply). Message content is only ever output ({{ ... }}), never parsed as a template; it is trimmed
# so that stray spaces or newlines around it do not become tokens the models never saw there.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant') }}{% endif %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ message['content'] | trim }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}{% endif %}")


FIXED = os.path.join(HERE, "kjv4096.model")  # the committed tokenizer model: both models share it


def train():
    """Use the committed sentencepiece model (tools/models/kjv4096.model) if present; `retrain` makes a new one."""
    os.makedirs(OUT, exist_ok=True)
    if os.path.exists(FIXED):
        shutil.copyfile(FIXED, os.path.join(OUT, "kjv4096.model"))
        print("tokenizer: using committed %s" % os.path.relpath(FIXED, HERE))
        return
    retrain()


def retrain():
    os.makedirs(OUT, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=os.path.join(CORPUS, "train.txt"), model_prefix=os.path.join(OUT, "kjv4096"),
        model_type="bpe", vocab_size=VOCAB, byte_fallback=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        split_digits=True, num_threads=2, max_sentence_length=8192, input_sentence_size=0,
        shuffle_input_sentence=False, minloglevel=2)
    shutil.copyfile(os.path.join(OUT, "kjv4096.model"), FIXED)


def export():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "kjv4096.model"))
    n = sp.get_piece_size()
    assert n == VOCAB
    pieces = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    assert pieces[:3] == ["<unk>", "<s>", "</s>"], pieces[:3]
    for b in range(256):
        assert pieces[3 + b] == "<0x%02X>" % b, (b, pieces[3 + b])
    vocab = {p: i for i, p in enumerate(pieces)}
    # merges: every pair (a, b) of normal pieces whose concatenation is a normal piece,
    # ordered by the merged piece's score (highest first), ties by the parts' ids.
    normal = [i for i in range(n) if sp.is_unknown(i) is False and not sp.is_control(i) and not sp.is_byte(i)]
    normal_set = {pieces[i] for i in normal}
    merges = []
    for i in normal:
        p = pieces[i]
        for k in range(1, len(p)):
            a, b = p[:k], p[k:]
            if a in normal_set and b in normal_set:
                merges.append((-scores[i], i, vocab[a], vocab[b], a, b))
    merges.sort()
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": False, "special": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": ["%s %s" % (m[4], m[5]) for m in merges]},
    }
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
        f.write("\n")
    added = lambda c: {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                       "single_word": False, "special": True}
    cfg = {"add_bos_token": True, "add_eos_token": False,
           "added_tokens_decoder": {"0": added("<unk>"), "1": added("<s>"), "2": added("</s>")},
           "bos_token": "<s>", "clean_up_tokenization_spaces": False, "eos_token": "</s>",
           "legacy": True, "model_max_length": MAX_LEN, "pad_token": None, "sp_model_kwargs": {},
           "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>", "chat_template": CHAT_TEMPLATE}
    with open(os.path.join(OUT, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print("exported: vocab %d, merges %d" % (n, len(merges)))


class HFBPE:
    """Minimal re-implementation of HF tokenizers' BPE model as configured in tokenizer.json
    (normalizer Prepend+Replace, no pre-tokenizer, merges by rank, byte_fallback, BOS template)."""

    def __init__(self, path):
        t = json.load(open(path, encoding="utf-8"))
        m = t["model"]
        self.vocab = m["vocab"]
        self.inv = {i: p for p, i in self.vocab.items()}
        self.ranks = {}
        for r, s in enumerate(m["merges"]):
            a, b = s.split(" ")
            self.ranks.setdefault((a, b), r)

    def encode(self, text, add_bos=True):
        s = ("\u2581" + text).replace(" ", "\u2581")  # normalizer (HF Prepend only if non-empty)
        if not text:
            s = ""
        syms = list(s)
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        ids = [1] if add_bos else []
        for sym in syms:
            if sym in self.vocab:
                ids.append(self.vocab[sym])
            else:  # byte fallback
                ids.extend(self.vocab["<0x%02X>" % b] for b in sym.encode("utf-8"))
        return ids

    def decode(self, ids):
        toks = [self.inv[i] for i in ids if i > 2]
        out, buf = [], b""
        for t in toks:
            t = t.replace("\u2581", " ")
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                buf += bytes([int(t[3:5], 16)])
                continue
            if buf:
                out.append(buf.decode("utf-8", errors="replace")); buf = b""
            out.append(t)
        if buf:
            out.append(buf.decode("utf-8", errors="replace"))
        s = "".join(out)
        return s[1:] if s.startswith(" ") else s


def verify():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "kjv4096.model"))
    hf = HFBPE(os.path.join(OUT, "tokenizer.json"))
    held = open(os.path.join(CORPUS, "heldout.txt")).read().splitlines()
    train_lines = open(os.path.join(CORPUS, "train.txt")).read().splitlines()[::97]
    extra = ["Hello, world!", "naïve café — “quoted” 你好 🙂", "  two  spaces ", "x", "1234567 Zzyzx", "a\nb\n\nc\n"]
    # second edition: passages are a chapter's verses joined with "\n" (byte token <0x0A>); the held-out chapters
    chapters = {}
    for line in open(os.path.join(CORPUS, "heldout_meta.tsv")).read().splitlines():
        b_, c_, _, t_ = line.split("\t")
        chapters.setdefault((b_, c_), []).append(t_)
    extra += ["\n".join(v) for v in chapters.values()]
    bad = 0
    total = 0
    for line in held + train_lines + extra:
        a = [1] + sp.encode(line)
        b = hf.encode(line)
        total += 1
        if a != b:
            bad += 1
            if bad <= 5:
                print("MISMATCH", repr(line), a[:20], b[:20])
        if hf.decode(b) != line:
            bad += 1
            print("DECODE MISMATCH", repr(line), repr(hf.decode(b)))
    ntok = sum(len(sp.encode(l)) for l in held)
    print("verify: %d texts (%d held-out verses, %d held-out chapters joined with \"\\n\"), mismatches %d; "
          "held-out tokens/verse %.1f, chars/token %.2f"
          % (total, len(held), len(chapters), bad, ntok / len(held), sum(map(len, held)) / ntok))
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    steps = sys.argv[1:] or ["train", "export", "verify"]
    for s in steps:
        globals()[s]()
