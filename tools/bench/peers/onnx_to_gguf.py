#!/usr/bin/python3
"""Converts a bundled Tandem model (int8 or fp32 ONNX + config.json + tokenizer) to an F32 GGUF that
llama.cpp runs as architecture "llama", so that llama.cpp can be timed on exactly Tandem's weights (issue 17).

Runs inside the sid chroot (tools/bench/peers/setup-chroot.sh) with Debian's python3-gguf, numpy, onnx and
sentencepiece; no torch. Steps:
- weights: the graph is read back to Hugging Face Llama tensors by tools/models/onnx_weights.py (the reader
  from_onnx.py uses; torch-free): an int8
  MatMulInteger weight W [in, out] with per-column scale and zero point dequantises to
  weight = ((W - zp) * scale).T; the per-row uint8 embedding to (Eq - zp) * scale; the norms keep their names.
- rotary layout: Tandem's graphs rotate halves (HF's rotate_half); llama.cpp's "llama" architecture rotates
  adjacent pairs, so q_proj and k_proj rows are permuted within each head exactly as convert_hf_to_gguf.py's
  LlamaModel.permute does (k with the number of key/value heads).
- vocabulary: pieces, scores and token types from the sentencepiece model the tokenizer was trained from
  (tools/models/kjv4096.model), as convert_hf_to_gguf.py's _create_vocab_sentencepiece does; checked against
  tokenizer.json (same piece for every id) so a different tokenizer is refused instead of silently mismatched.
- the embedding is tied: no output.weight is written (llama.cpp then uses token_embd for the classifier);
  the graph's own classifier is checked to dequantise to the embedding.

  onnx_to_gguf.py --model-dir models/kjv-target --sp-model tools/models/kjv4096.model --out kjv-target-f32.gguf
"""
import argparse
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import gguf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from onnx_weights import read_weights  # noqa: E402  (tools/models, torch-free: the reader from_onnx.py uses too)


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: rotate-half row order -> llama.cpp's interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def vocabulary(sp_path, tokenizer_json):
    """Pieces, scores and GGUF token types from the sentencepiece model, checked against tokenizer.json."""
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_unused(i):
            types.append(gguf.TokenType.UNUSED)
        elif sp.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    hf = json.load(open(tokenizer_json, encoding="utf-8"))["model"]["vocab"]
    by_id = {v: k for k, v in hf.items()}
    wrong = [i for i in range(len(tokens)) if by_id.get(i, "").encode("utf-8") != tokens[i]]
    if len(hf) != len(tokens) or wrong:
        raise SystemExit("the sentencepiece model does not match %s (%d vs %d pieces; first differing ids %s)"
                         % (tokenizer_json, len(tokens), len(hf), wrong[:5]))
    return sp, tokens, scores, types


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, help="a bundled model: model.onnx, config.json, tokenizer.json")
    ap.add_argument("--onnx", default="model.onnx", help="graph file inside --model-dir (default model.onnx)")
    ap.add_argument("--sp-model", required=True, help="sentencepiece model the tokenizer came from")
    ap.add_argument("--out", required=True, help="F32 GGUF to write")
    a = ap.parse_args()

    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    if cfg.get("model_type") != "llama" or cfg.get("rope_scaling"):
        raise SystemExit("only plain Llama configs (no rope scaling) are converted")
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim", hidden // n_head)
    if head_dim * n_head != hidden:
        raise SystemExit("head_dim * heads != hidden size: llama.cpp's llama architecture assumes it")

    sd = read_weights(os.path.join(a.model_dir, a.onnx))
    emb = sd["model.embed_tokens.weight"]
    if "lm_head.weight" in sd:
        lm = sd.pop("lm_head.weight")
        diff = float(np.abs(lm - emb).max())
        print("tied check: max |classifier - embedding| = %.3g" % diff)
        if not cfg.get("tie_word_embeddings") or diff > 1e-6:
            raise SystemExit("the classifier is not the embedding: untied models are not handled")

    names = {  # HF name -> GGUF name (gguf.TENSOR_NAMES for the llama architecture)
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    for i in range(layers):
        p = "model.layers.%d." % i
        names.update({
            p + "input_layernorm.weight": "blk.%d.attn_norm.weight" % i,
            p + "self_attn.q_proj.weight": "blk.%d.attn_q.weight" % i,
            p + "self_attn.k_proj.weight": "blk.%d.attn_k.weight" % i,
            p + "self_attn.v_proj.weight": "blk.%d.attn_v.weight" % i,
            p + "self_attn.o_proj.weight": "blk.%d.attn_output.weight" % i,
            p + "post_attention_layernorm.weight": "blk.%d.ffn_norm.weight" % i,
            p + "mlp.gate_proj.weight": "blk.%d.ffn_gate.weight" % i,
            p + "mlp.up_proj.weight": "blk.%d.ffn_up.weight" % i,
            p + "mlp.down_proj.weight": "blk.%d.ffn_down.weight" % i,
        })
    missing, extra = sorted(set(names) - set(sd)), sorted(set(sd) - set(names))
    if missing or extra:
        raise SystemExit("graph weights do not match the config: missing %s, unexpected %s" % (missing, extra))

    sp, tokens, scores, types = vocabulary(a.sp_model, os.path.join(a.model_dir, "tokenizer.json"))
    if len(tokens) != cfg["vocab_size"] or emb.shape[0] != len(tokens):
        raise SystemExit("vocabulary size %d, config %d, embedding rows %d" % (len(tokens), cfg["vocab_size"], emb.shape[0]))
    tok_cfg_path = os.path.join(a.model_dir, "tokenizer_config.json")
    tok_cfg = json.load(open(tok_cfg_path)) if os.path.exists(tok_cfg_path) else {}

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(os.path.basename(os.path.normpath(a.model_dir)))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(cfg["rope_theta"]))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("llama")  # sentencepiece-style: pieces with scores, byte fallback, "▁" for spaces
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(cfg.get("bos_token_id", sp.bos_id()))
    w.add_eos_token_id(cfg.get("eos_token_id", sp.eos_id()))
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(bool(tok_cfg.get("add_bos_token", True)))
    w.add_add_eos_token(bool(tok_cfg.get("add_eos_token", False)))
    # tokenizer.json's normalizer prepends "▁" (sentencepiece's add_dummy_prefix): llama.cpp does the same
    w.add_add_space_prefix(True)

    for hf_name, gguf_name in names.items():
        t = np.ascontiguousarray(sd[hf_name], dtype=np.float32)
        if hf_name.endswith("q_proj.weight"):
            t = np.ascontiguousarray(permute(t, n_head, n_head))
        elif hf_name.endswith("k_proj.weight"):
            t = np.ascontiguousarray(permute(t, n_head, n_kv))
        w.add_tensor(gguf_name, t)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    n_params = sum(v.size for v in sd.values())
    print("wrote %s: %d tensors, %d parameters, %d layers, vocabulary %d" % (a.out, len(names), n_params, layers, len(tokens)))


if __name__ == "__main__":
    sys.exit(main())
