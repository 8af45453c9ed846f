#!/usr/bin/python3
"""A tiny seeded random Llama written in the layout `onnxruntime_genai.models.builder` emits for the CPU, for the
Java engine tests (src/test/resources/models/genai-tiny-int4/ and genai-tiny-int8/). No onnxruntime-genai here:
the graph is written node by node with the onnx helper, following what the builder writes for a Llama on CPU
(builder.py, make_attention_init / make_layer / make_matmul_int4, as of 2025-2026):

  inputs   input_ids [B,S] int64, attention_mask [B,P+S] int64, past_key_values.%d.key|value [B,kv,P,hd] float
           (no position_ids: GroupQueryAttention computes the rotary positions itself, as the builder does for
           every EP but DirectML)
  per graph   seqlens_k = Cast<int32>(ReduceSum(attention_mask, axis 1) - 1),
              total_sequence_length = Cast<int32>(Gather(Shape(attention_mask), 1))
  per layer   SimplifiedLayerNormalization (first layer) or SkipSimplifiedLayerNormalization (the residual sum is
              its 4th output), one packed Q|K|V MatMulNBits, com.microsoft.GroupQueryAttention (query = the
              packed QKV, key/value empty, do_rotary=1 with cos_cache/sin_cache initializers [context, hd/2],
              not interleaved), o_proj MatMulNBits, SkipSimplifiedLayerNormalization, gate/up MatMulNBits,
              SiLU as Sigmoid * x, down MatMulNBits
  head     SkipSimplifiedLayerNormalization, lm_head MatMulNBits -> logits [B,S,V]; present.%d.key|value
           [B,kv,P+S,hd]
  MatMulNBits  block_size 32, accuracy_level 4; int4 symmetric without zero points (the builder's default),
               int8 asymmetric with zero points (the other form the runtime accepts); the weights packed as
               ONNX Runtime's blockwise quantiser packs them (B [N, blocks, block_size*bits/8], two 4-bit values
               a byte, low nibble first; scales [N*blocks]; 4-bit zero points two a byte).

--bits 16 writes the graph as the builder's `-p fp16` does (its io_dtype is float16 for fp16 on every execution
provider, the CPU included: builder.py set_io_dtype): the weights as float16 MatMul initializers [K, N], the embedding,
norm gains and rotary caches float16, GroupQueryAttention and the caches float16, logits float16. --bits 32 is the
same all float32 (`-p fp32`): no int8 rounding of activations, so a block and single steps differ only by summation
order (the shared-buffer tests use it).

The builder's genai_config.json says past_present_share_buffer=true for GroupQueryAttention graphs: ONNX Runtime
GenAI then binds the past and the present to one max-length buffer. The graph does not depend on it (the kernel
checks whether the two pointers are equal); Tandem does the same (OrtCausalLm's shared-buffer layout: every
sequence a row of a slot pool, one buffer bound as past and present).

The embedding stays float32 (Gather), as the builder leaves it. hidden_size 32 keeps each directory under 1 MB (the
4096 x 32 float embedding is 0.5 MB; at 64 it alone would be 1 MB). ONNX Runtime's CPU GroupQueryAttention wants a
head size that is a multiple of 16 ("head_size shall be a multiple of 16"), so 2 query heads of 16 share 1 key/value
head (grouped-query attention, 2 to 1).

Written to <out>/: model.onnx, genai_config.json, tokenizer.json + tokenizer_config.json (copied from
models/kjv-draft), reference.json (torch greedy ids from the SAME dequantised weights). Byte-reproducible (seeded).

  genai_fixture.py --bits 4 --out ../../src/test/resources/models/genai-tiny-int4
  genai_fixture.py --bits 16 --out ../../src/test/resources/models/genai-tiny-fp16   (and --bits 32: genai-tiny-fp32)

--size target writes the same layout at the bundled target's dimensions (models/kjv-target/config.json: 8 layers,
hidden 512, 8 query / 4 key-value heads of 64, context 1024) with seeded random weights, for timing the engine on a
GenAI graph of a realistic size (docs/benchmarks.md, "GenAI graphs on one buffer"); not a test fixture.
"""
import argparse, json, os, shutil, sys
import numpy as np
import torch
import sentencepiece as spm
from onnx import TensorProto, helper, numpy_helper
import onnx

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, Llama  # noqa: E402

CONFIG = dict(vocab_size=4096, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
              intermediate_size=128, max_position_embeddings=256, tie_word_embeddings=False)
SEED = 20261201
BLOCK = 32
ACCURACY_LEVEL = 4
PROMPTS = ["And he said unto them,", "In the beginning God created", "Blessed are the",
           "And it came to pass, when the king heard the words of the law, that he rent his clothes."]
MAX_NEW = 16
REFERENCE_DOC = ("Greedy continuations computed in torch (fp32) from the graph's weights as MatMulNBits dequantises "
                 "them ((q - zero_point) * scale, per block of 32 along the input axis): prompt_ids = [<s>] + the "
                 "tokenizer's encoding of prompt, greedy_ids = up to max_new tokens (stopping after EOS id 2 if "
                 "produced). min_top2_gap = smallest gap between the best and second-best logit over the greedy "
                 "steps. The matmul inputs are rounded to int8 per block of 32 as MatMulNBits at accuracy_level 4 "
                 "does on the CPU (genai_fixture.py round_activations), so torch and the graph differ only by float "
                 "summation order.")

REFERENCE_DOC_FLOAT = ("Greedy continuations computed in torch (fp32) from the graph's weights as %s holds them: "
                       "prompt_ids = [<s>] + the tokenizer's encoding of prompt, greedy_ids = up to max_new tokens "
                       "(stopping after EOS id 2 if produced). min_top2_gap = smallest gap between the best and "
                       "second-best logit over the greedy steps. The graph computes in %s (activations, caches, "
                       "logits), so its logits differ from these by rounding, far less than the gaps.")


def target_config():
    """The bundled target's dimensions (--size target)."""
    with open(os.path.join(HERE, "..", "..", "models", "kjv-target", "config.json")) as f:
        t = json.load(f)
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "max_position_embeddings")
    return dict({k: t[k] for k in keys}, tie_word_embeddings=False)


def build_model(config=CONFIG):
    torch.manual_seed(SEED)
    m = Llama(Config(**config))
    # as slots_fixture.py: larger than training-init weights so that attention and the MLP matter and the logits are
    # decisive (clear top-1 gaps survive the int4 rounding and the int8 activations of accuracy_level 4)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 if "embed" in n else 1.5 / p.shape[1] ** 0.5)
            else:  # RMSNorm gains: not all ones, so a wrong gamma wiring shows
                p.uniform_(0.8, 1.2)
        # the LM head is the embedding, as in a tied-embedding Llama (the builder then keeps the float Gather table
        # and quantises a copy for the head): the current token's own row stands out in the logits, which makes the
        # top-1 gaps wide (slots_fixture.py's tied model: 0.1-0.4); an independent random head gave gaps of 0.002
        m.lm_head.weight.copy_(m.model.embed_tokens.weight)
    m.eval()
    return m


def quantize(w, bits):
    """w [N, K] (a torch Linear weight: output rows) -> (B uint8 [N, blocks, BLOCK*bits/8], scales float32 [N*blocks],
    zero points uint8 or None, dequantised [N, K] float32). int4: symmetric as ONNX Runtime's quantiser does it
    (scale = the block's signed largest-magnitude value / -8, implicit zero point 8, no zero points written);
    int8: asymmetric (range widened to include 0, scale = range / 255, zero point round(-min / scale))."""
    n, k = w.shape
    blocks = (k + BLOCK - 1) // BLOCK
    wp = np.zeros((n, blocks * BLOCK), dtype=np.float32)
    wp[:, :k] = w
    wb = wp.reshape(n, blocks, BLOCK)
    qmax = (1 << bits) - 1
    if bits == 4:
        idx = np.abs(wb).argmax(axis=2)
        big = np.take_along_axis(wb, idx[:, :, None], axis=2)[:, :, 0]
        scale = (big / -8.0).astype(np.float32)
        zp = np.full((n, blocks), 8, dtype=np.int32)
    else:
        lo = np.minimum(wb.min(axis=2), 0.0)
        hi = np.maximum(wb.max(axis=2), 0.0)
        scale = ((hi - lo) / qmax).astype(np.float32)
        safe = np.where(scale == 0, 1.0, scale)
        zp = np.clip(np.round(-lo / safe), 0, qmax).astype(np.int32)
    safe = np.where(scale == 0, np.float32(1.0), scale).astype(np.float32)
    q = np.clip(np.round(wb / safe[:, :, None]) + zp[:, :, None], 0, qmax).astype(np.int32)
    deq = ((q - zp[:, :, None]).astype(np.float32) * scale[:, :, None]).reshape(n, blocks * BLOCK)[:, :k]
    if bits == 4:
        packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
        zps = None  # symmetric: the kernel's default zero point (8) applies
    else:
        packed = q.astype(np.uint8)
        zps = zp.astype(np.uint8).reshape(-1)
    return packed, scale.reshape(-1), zps, deq.astype(np.float32)


class GraphWriter:
    def __init__(self, bits):
        self.bits = bits
        self.nodes, self.inits = [], []
        # the graph's float type: float16 throughout for --bits 16 (the builder's `-p fp16`, whose io_dtype is float16
        # on every EP, the CPU included), float32 otherwise (the builder's int4/int8 CPU graphs and `-p fp32`)
        self.float = np.float16 if bits == 16 else np.float32
        self.onnx_float = TensorProto.FLOAT16 if bits == 16 else TensorProto.FLOAT

    def weight(self, name, arr):
        """A float initializer in the graph's float type; returns (its name, the values as the graph holds them)."""
        held = np.ascontiguousarray(arr).astype(self.float)
        self.init(name, held)
        return name, held.astype(np.float32)

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, outputs, name, domain="", **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0]

    def matmul(self, name, x, w):
        """MatMulNBits y = x W^T for a torch weight w [N, K]; returns (output name, dequantised w). For --bits 16 a
        MatMul with the float16 weight transposed to [K, N], as the builder writes unquantised weights (float32 for
        --bits 32)."""
        if self.bits in (16, 32):
            wt, held = self.weight(name.replace("MatMulNBits", "MatMul") + ".weight", w.T)
            out = self.node("MatMul", [x, wt], [name.replace("MatMulNBits", "MatMul") + "/output_0"],
                            name.replace("MatMulNBits", "MatMul"))
            return out, held.T.copy()
        packed, scales, zps, deq = quantize(w, self.bits)
        ins = [x, self.init(name + ".qweight", packed), self.init(name + ".scales", scales)]
        if zps is not None:
            ins.append(self.init(name + ".qzeros", zps))
        n, k = w.shape
        out = self.node("MatMulNBits", ins, [name + "/output_0"], name, domain="com.microsoft", K=k, N=n,
                        bits=self.bits, block_size=BLOCK, accuracy_level=ACCURACY_LEVEL)
        return out, deq


def export(model, bits, path):
    """Writes the GenAI-layout graph; loads the dequantised weights back into `model` (the torch reference)."""
    c = model.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    g = GraphWriter(bits)
    L, kvh, hd, ctx = c.num_hidden_layers, c.num_key_value_heads, c.head_dim, c.max_position_embeddings
    deq = {}
    eps = c.rms_norm_eps

    # attention mask -> per-row lengths, as the builder's GQA mask reformatting does
    g.init("one_i64", np.array(1, dtype=np.int64))
    g.init("axis_1", np.array([1], dtype=np.int64))
    g.node("ReduceSum", ["attention_mask", "axis_1"], ["mask_sum"], "/model/attn_mask_reformat/ReduceSum", keepdims=0)
    g.node("Sub", ["mask_sum", "one_i64"], ["mask_sum_minus_1"], "/model/attn_mask_reformat/Sub")
    g.node("Cast", ["mask_sum_minus_1"], ["seqlens_k"], "/model/attn_mask_reformat/Cast_seqlens", to=TensorProto.INT32)
    g.node("Shape", ["attention_mask"], ["mask_shape"], "/model/attn_mask_reformat/Shape")
    g.node("Gather", ["mask_shape", "one_i64"], ["mask_len"], "/model/attn_mask_reformat/Gather", axis=0)
    g.node("Cast", ["mask_len"], ["total_seq_len"], "/model/attn_mask_reformat/Cast_total", to=TensorProto.INT32)

    # rotary caches [context, hd/2] by model.py's formula (the torch reference computes the same angles)
    pos = torch.arange(ctx, dtype=torch.float32)
    freqs = pos[:, None] * model.inv_freq[None, :]
    g.weight("cos_cache", freqs.cos().numpy())
    g.weight("sin_cache", freqs.sin().numpy())

    emb, deq["model.embed_tokens.weight"] = g.weight("model.embed_tokens.weight", sd["model.embed_tokens.weight"])
    x = g.node("Gather", [emb, "input_ids"], ["/model/embed_tokens/Gather/output_0"], "/model/embed_tokens/Gather", axis=0)
    residual = None
    mlp_out = None
    for i in range(L):
        p = "model.layers.%d." % i
        gamma, deq[p + "input_layernorm.weight"] = g.weight(p + "input_layernorm.weight", sd[p + "input_layernorm.weight"])
        ln = "/model/layers.%d/input_layernorm" % i
        if i == 0:
            h = g.node("SimplifiedLayerNormalization", [x, gamma], [ln + "/output_0"], ln + "/LayerNorm",
                       axis=-1, epsilon=eps, stash_type=1)
            residual = x
        else:
            h, residual = _skip_norm(g, mlp_out, residual, gamma, ln, eps)
        a = p + "self_attn."
        qkv_w = np.concatenate([sd[a + "q_proj.weight"], sd[a + "k_proj.weight"], sd[a + "v_proj.weight"]], axis=0)
        qkv, qkv_deq = g.matmul("/model/layers.%d/attn/qkv_proj/MatMulNBits" % i, h, qkv_w)
        nq, nk = sd[a + "q_proj.weight"].shape[0], sd[a + "k_proj.weight"].shape[0]
        deq[a + "q_proj.weight"], deq[a + "k_proj.weight"], deq[a + "v_proj.weight"] = (
            qkv_deq[:nq], qkv_deq[nq:nq + nk], qkv_deq[nq + nk:])
        gqa = "/model/layers.%d/attn/GroupQueryAttention" % i
        att = g.node("GroupQueryAttention",
                     [qkv, "", "", "past_key_values.%d.key" % i, "past_key_values.%d.value" % i, "seqlens_k",
                      "total_seq_len", "cos_cache", "sin_cache"],
                     [gqa + "/output_0", "present.%d.key" % i, "present.%d.value" % i], gqa, domain="com.microsoft",
                     num_heads=c.num_attention_heads, kv_num_heads=kvh, do_rotary=1, rotary_interleaved=0,
                     local_window_size=-1, scale=float(1.0 / np.sqrt(hd)))
        o, deq[a + "o_proj.weight"] = g.matmul("/model/layers.%d/attn/o_proj/MatMulNBits" % i, att, sd[a + "o_proj.weight"])
        gamma, deq[p + "post_attention_layernorm.weight"] = g.weight(p + "post_attention_layernorm.weight",
                                                                     sd[p + "post_attention_layernorm.weight"])
        h, residual = _skip_norm(g, o, residual, gamma, "/model/layers.%d/post_attention_layernorm" % i, eps)
        m = p + "mlp."
        gate, deq[m + "gate_proj.weight"] = g.matmul("/model/layers.%d/mlp/gate_proj/MatMulNBits" % i, h,
                                                     sd[m + "gate_proj.weight"])
        up, deq[m + "up_proj.weight"] = g.matmul("/model/layers.%d/mlp/up_proj/MatMulNBits" % i, h, sd[m + "up_proj.weight"])
        act = "/model/layers.%d/mlp/act_fn" % i
        sig = g.node("Sigmoid", [gate], [act + "/Sigmoid/output_0"], act + "/Sigmoid")
        silu = g.node("Mul", [gate, sig], [act + "/Mul/output_0"], act + "/Mul")
        prod = g.node("Mul", [silu, up], ["/model/layers.%d/mlp/Mul/output_0" % i], "/model/layers.%d/mlp/Mul" % i)
        mlp_out, deq[m + "down_proj.weight"] = g.matmul("/model/layers.%d/mlp/down_proj/MatMulNBits" % i, prod,
                                                        sd[m + "down_proj.weight"])
    gamma, deq["model.norm.weight"] = g.weight("model.norm.weight", sd["model.norm.weight"])
    h, _ = _skip_norm(g, mlp_out, residual, gamma, "/model/layers.%d/final_norm_layernorm" % L, eps)
    logits, deq["lm_head.weight"] = g.matmul("/lm_head/MatMulNBits", h, sd["lm_head.weight"])
    g.node("Identity", [logits], ["logits"], "/lm_head/Identity")

    f32 = g.onnx_float
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "sequence_length", c.vocab_size])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info("past_key_values.%d.%s" % (i, kv), f32,
                                                        ["batch_size", kvh, "past_sequence_length", hd]))
            outputs.append(helper.make_tensor_value_info("present.%d.%s" % (i, kv), f32,
                                                         ["batch_size", kvh, "total_sequence_length", hd]))
    graph = helper.make_graph(g.nodes, "main_graph", inputs, outputs, g.inits)
    mp = helper.make_model(graph, producer_name="tandem genai_fixture.py",
                           opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    mp.ir_version = 8
    onnx.save(mp, path)

    with torch.no_grad():
        for k, v in deq.items():
            model.state_dict()[k].copy_(torch.from_numpy(v))


def _skip_norm(g, x, skip, gamma, name, eps):
    """SkipSimplifiedLayerNormalization: (normalised x + skip, the sum x + skip for the next residual)."""
    out = g.node("SkipSimplifiedLayerNormalization", [x, skip, gamma],
                 [name + "/output_0", "", "", name + "/output_3"], name + "/SkipLayerNorm",
                 domain="com.microsoft", epsilon=eps)
    return out, name + "/output_3"


def round_activations(model):
    """Makes the torch reference compute as MatMulNBits at accuracy_level 4 does on the CPU: each row of a matmul's
    input is rounded to int8 per block of 32 along K (scale = the block's largest magnitude / 127, round half to
    even) before it meets the weights; the integer products summed per block and scaled equal the float product of
    the rounded activations and the dequantised weights, up to float summation order. Without it the reference
    and the graph disagree where the top two logits are close (seen: a gap of 0.024 flipped at step 10)."""
    def hook(_module, args):
        x = args[0]
        k = x.shape[-1]
        blocks = (k + BLOCK - 1) // BLOCK  # a K that is not a multiple of the block: the last block padded with zeros
        xp = torch.nn.functional.pad(x.reshape(-1, k), (0, blocks * BLOCK - k))
        xb = xp.reshape(-1, blocks, BLOCK)
        amax = xb.abs().amax(dim=-1, keepdim=True)
        scale = amax / 127.0
        q = torch.round(xb / torch.where(scale == 0, torch.ones_like(scale), scale))
        return ((q * scale).reshape(-1, blocks * BLOCK)[:, :k].reshape(x.shape),)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(hook)


def genai_config(c):
    """genai_config.json with the entries the builder writes for a Llama on CPU."""
    return {
        "model": {
            "bos_token_id": 1, "context_length": c.max_position_embeddings,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx", "head_size": c.head_dim, "hidden_size": c.hidden_size,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": c.num_attention_heads, "num_hidden_layers": c.num_hidden_layers,
                "num_key_value_heads": c.num_key_value_heads,
            },
            "eos_token_id": 2, "pad_token_id": 0, "type": "llama", "vocab_size": c.vocab_size,
        },
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
                   "max_length": c.max_position_embeddings, "min_length": 0, "no_repeat_ngram_size": 0,
                   "num_beams": 1, "num_return_sequences": 1, "past_present_share_buffer": True,
                   "repetition_penalty": 1.0, "temperature": 1.0, "top_k": 1, "top_p": 1.0},
    }


@torch.no_grad()
def greedy_with_gap(model, ids, n):
    logits, past = model(torch.tensor([ids]))
    gap, gen = float("inf"), []
    for _ in range(n):
        top = torch.topk(logits[0, -1], 2).values
        gap = min(gap, float(top[0] - top[1]))
        t = int(logits[0, -1].argmax())
        gen.append(t)
        if t == 2:
            break
        logits, past = model(torch.tensor([[t]]), past=past)
    return gen, gap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, choices=(4, 8, 16, 32), required=True,
                    help="4 / 8: MatMulNBits with float32 activations and caches (the builder's int4 / int8 on CPU); "
                         "16: float16 weights, activations, caches and logits (the builder's `-p fp16`); 32: all "
                         "float32 (`-p fp32`)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", choices=("tiny", "target"), default="tiny")
    ap.add_argument("--block", type=int, choices=(32, 64, 128), default=32,
                    help="MatMulNBits block_size (the builder's int4_block_size; 32 its default, 128 common in published "
                         "models); a K below it is one block padded with zeros")
    ap.add_argument("--intermediate", type=int, default=None,
                    help="the MLP's width (tiny: 128); 256 with --block 128 gives the down projection a K of two blocks")
    a = ap.parse_args()
    global BLOCK
    BLOCK = a.block
    os.makedirs(a.out, exist_ok=True)
    config = target_config() if a.size == "target" else dict(CONFIG)
    if a.intermediate:
        config["intermediate_size"] = a.intermediate
    model = build_model(config)
    export(model, a.bits, os.path.join(a.out, "model.onnx"))
    with open(os.path.join(a.out, "genai_config.json"), "w") as f:
        json.dump(genai_config(model.config), f, indent=4)
        f.write("\n")
    bundled = os.path.join(HERE, "..", "..", "models", "kjv-draft")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(bundled, name), os.path.join(a.out, name))
    if a.bits <= 8:  # float graphs compute the products in float (no int8 activations)
        round_activations(model)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "kjv4096.model"))
    refs = []
    for p in PROMPTS:
        ids = [1] + sp.encode(p)
        gen, gap = greedy_with_gap(model, ids, MAX_NEW)
        refs.append({"prompt": p, "prompt_ids": ids, "greedy_ids": gen,
                     "greedy_text": sp.decode([t for t in gen if t > 2]), "min_top2_gap": round(gap, 4)})
    weights = ("MatMul float%d (float%d activations, caches and logits)" % (a.bits, a.bits) if a.bits >= 16
               else "MatMulNBits bits=%d block_size=%d%s"
               % (a.bits, BLOCK, " with zero points" if a.bits == 8 else " symmetric (no zero points)"))
    ref = {"doc": REFERENCE_DOC_FLOAT % ("float16", "float16") if a.bits == 16
           else REFERENCE_DOC_FLOAT % ("float32", "float32") if a.bits == 32 else REFERENCE_DOC, "kv_layout": "onnxruntime-genai",
           "weights": weights,
           "seed": SEED, "max_new": MAX_NEW, "prompts": refs}
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    for r in refs:
        print("%-40s gap %.3f -> %s" % (r["prompt"][:40], r["min_top2_gap"], r["greedy_text"]))
    for name in sorted(os.listdir(a.out)):
        print("%10d %s" % (os.path.getsize(os.path.join(a.out, name)), name))


if __name__ == "__main__":
    main()
