"""Rewrites the shipped slots-layout int8 target (models/kjv-target/model.onnx) into a graph with fewer nodes.

Why (issue 17): a single-token step of the shipped graph is dispatch-bound. ONNX Runtime runs 1,128 nodes per
call after its own optimisation (85 per layer), most of them shape arithmetic (Shape/Gather/Unsqueeze/Concat
feeding Reshape), the 9-node per-row activation quantisation in front of every MatMulInteger, and 4 nodes per
projection. This script rebuilds the same computation from the shipped initializers, layer by layer, keeping the
slots contract (/work/notes/slots.md: inputs, outputs, ScatterElements at position_ids, rotary tables gathered by
position, row-wise M=1 attention over all W keys, model metadata) and, in the `integer` modes, the shipped
arithmetic node for node, so that the logits are the shipped graph's to the bit:
  - Reshapes with constant shapes (0 = copy the dimension, -1 = infer) instead of computed ones;
  - q, k, v in ONE MatMulInteger (weights concatenated along N: integer products per column are exact, and the
    per-row / per-column float scaling is elementwise), gate and up in one; then Split;
  - rotary on q and k together (one set of Slice/Neg/Concat/Mul/Add for both);
  - the mask, the scatter index and the rotary rows computed once for all layers;
  - the scores kept in the 6-D row-wise shape (no Reshape to [b, h, s, W] and back): Mul/Where/Softmax act per
    row of W keys either way;
  - RMSNorm written as SimplifiedLayerNormalization and SiLU as QuickGelu(alpha 1), the nodes ONNX Runtime's own
    fusions make of the shipped graph (the same kernels);
  - --quantize qlinear: the per-row activation quantisation's Div/Round/Add/Clip/Cast as one QuantizeLinear
    (opset 21, blocked along the last axis with block = the row: round-half-even of x / scale, + 128, saturated).
Other modes change the arithmetic (not the shipped bits; checked for greedy agreement and invariance instead):
  - --matmul nbits8: MatMulNBits (com.microsoft) with the shipped uint8 weights, per-column zero points and scales
    repeated per block (the weights dequantise to exactly the shipped values); accuracy_level 4 quantises the
    activations to int8 per block of --block inputs inside the kernel, so no quantisation nodes at all;
  - --matmul nbits4: the same with the weights re-quantised to 4 bits per block (a measurement only: the shipped
    weights are int8);
  - --skip-norm: the residual Add + RMSNorm as SkipSimplifiedLayerNormalization.
Layout options that keep the arithmetic of each score / value exact and the same at every T and B (invariance 0):
  - --attention mixed: q @ K^T as one product per (row, kv head) over its rep*T query rows (M >= 2, so always MLAS's
    packed path, K^T packed once per kv head instead of once per query row), probabilities @ V row-wise (M=1 gemv);
  - --scatter nd: the new keys/values written with ScatterND, one hd-vector per token (ScatterElements goes element
    by element). NOTES.md "Round 2" has the measurements.

  /usr/bin/python3 fuse_graph.py --src ../../models/kjv-target/model.onnx --out work/faststep/int.onnx
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, outputs=1, domain="", **attrs):
        self.n += 1
        names = [f"{op_type}_{self.n}_{i}" for i in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"{op_type}_{self.n}", domain=domain, **attrs))
        return names[0] if len(names) == 1 else names


def load(src):
    m = onnx.load(src)
    w = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            w[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return m, w


def build(src, matmul="integer", quantize="chain", block=128, accuracy=4, skip_norm=False, rotary="slices",
          fused_scores=False, attention="rowwise", scatter="elements", kv="fp32"):
    m, w = load(src)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta.get("tandem.kv_layout") == "slots", "the shipped graph must be in the slots layout"
    layers = sum(1 for i in m.graph.input if i.name.startswith("past_key_values.") and i.name.endswith(".key"))
    kv_shape = [d for d in m.graph.input if d.name == "past_key_values.0.key"][0].type.tensor_type.shape.dim
    kvh, hd = kv_shape[1].dim_value, kv_shape[3].dim_value
    hidden = w["m.model.norm.weight"].shape[0]
    heads = hidden // hd
    rep = heads // kvh
    b = Builder()
    i64 = lambda *v: np.array(v, dtype=np.int64)
    c_eps, c_127 = b.const("tq_eps", w["tq_eps"]), b.const("tq_127", w["tq_127"])
    c_128f, c_0f, c_255f = b.const("tq_128f", w["tq_128f"]), b.const("tq_0f", w["tq_0f"]), b.const("tq_255f", w["tq_255f"])
    c_zp = b.const("tq_zp128", w["tq_zp128"])
    c_axis_last = b.const("axes_last", i64(-1))

    def quant(x, k):
        """Per-row symmetric int8 activation quantisation as the shipped graph does it: (uint8 codes, row scale)."""
        amax = b.op("ReduceMax", [b.op("Abs", [x]), c_axis_last], keepdims=1)
        xs = b.op("Div", [b.op("Max", [amax, c_eps]), c_127])
        if quantize == "qlinear":
            # block = the whole row: scale [.., 1] broadcast over the row; zero point 128 of the same shape
            zp = b.op("Cast", [b.op("Mul", [b.op("Mul", [xs, c_0f]), c_0f])], to=TensorProto.UINT8)  # zeros like xs
            zp = b.op("Add", [zp, c_zp])
            xq = b.op("QuantizeLinear", [x, xs, zp], axis=-1, block_size=k)
        else:
            xr = b.op("Round", [b.op("Div", [x, xs])])
            xq = b.op("Cast", [b.op("Clip", [b.op("Add", [xr, c_128f]), c_0f, c_255f])], to=TensorProto.UINT8)
        return xq, xs

    def weights(names):
        """Shipped [K, N] uint8 weights, per-column zero points and scales, concatenated along N."""
        q = np.concatenate([w[n + "_Wq"] for n in names], axis=1)
        zp = np.concatenate([w[n + "_Wzp"] for n in names])
        sc = np.concatenate([w[n + "_Wscale"] for n in names])
        return q, zp, sc

    def linear(x, names, tag, xq_xs=None):
        """x @ W for the shipped weights `names` (concatenated along N), in the chosen matmul form."""
        q, zp, sc = weights(names)
        k, n = q.shape
        if matmul == "integer":
            xq, xs = xq_xs if xq_xs is not None else quant(x, k)
            y = b.op("MatMulInteger", [xq, b.const(tag + "_Wq", q), c_zp, b.const(tag + "_Wzp", zp)])
            return b.op("Mul", [b.op("Mul", [b.op("Cast", [y], to=TensorProto.FLOAT), xs]), b.const(tag + "_Wscale", sc)])
        blk = block
        while k % blk:
            blk //= 2
        nb = k // blk
        if matmul == "nbits8":
            bq = np.ascontiguousarray(q.T.reshape(n, nb, blk))
            scales = np.repeat(sc[:, None], nb, axis=1).astype(np.float32).reshape(-1)
            zps = np.repeat(zp[:, None], nb, axis=1).astype(np.uint8).reshape(-1)
            bits = 8
        elif matmul == "nbits4":  # re-quantise the dequantised shipped weights, asymmetric per block of blk inputs
            deq = (q.astype(np.float32) - zp[None, :].astype(np.float32)) * sc[None, :]
            blocks = deq.T.reshape(n, nb, blk)
            lo, hi = np.minimum(blocks.min(-1), 0), np.maximum(blocks.max(-1), 0)
            s4 = np.maximum((hi - lo) / 15, 1e-12).astype(np.float32)
            z4 = np.clip(np.round(-lo / s4), 0, 15).astype(np.uint8)
            q4 = np.clip(np.round(blocks / s4[..., None]) + z4[..., None], 0, 15).astype(np.uint8)
            bq = (q4[..., 0::2] | (q4[..., 1::2] << 4)).astype(np.uint8)
            scales = s4.reshape(-1)
            zz = z4 if nb % 2 == 0 else np.concatenate([z4, np.zeros((n, 1), np.uint8)], axis=1)
            zps = (zz[:, 0::2] | (zz[:, 1::2] << 4)).astype(np.uint8).reshape(-1)
            bits = 4
        if matmul == "nbits4sym":  # symmetric 4 bits, no zero points (the model builder's default; measurement)
            deq = (q.astype(np.float32) - zp[None, :].astype(np.float32)) * sc[None, :]
            blocks = deq.T.reshape(n, nb, blk)
            idx = np.abs(blocks).argmax(-1)
            signed_max = np.take_along_axis(blocks, idx[..., None], -1)[..., 0]
            s4 = (signed_max / -8.0).astype(np.float32)
            s4 = np.where(s4 == 0, np.float32(1e-12), s4).astype(np.float32)
            q4 = np.clip(np.round(blocks / s4[..., None]) + 8, 0, 15).astype(np.uint8)
            bq = (q4[..., 0::2] | (q4[..., 1::2] << 4)).astype(np.uint8)
            return b.op("MatMulNBits", [x, b.const(tag + "_B", bq), b.const(tag + "_S", s4.reshape(-1))],
                        domain="com.microsoft", K=k, N=n, bits=4, block_size=blk, accuracy_level=accuracy)
        return b.op("MatMulNBits", [x, b.const(tag + "_B", bq), b.const(tag + "_S", scales), b.const(tag + "_Z", zps)],
                    domain="com.microsoft", K=k, N=n, bits=bits, block_size=blk, accuracy_level=accuracy)

    def norm(x, weight_name, skip=None):
        """RMSNorm; with skip (--skip-norm): also returns x + skip, the residual stream."""
        g = b.const(weight_name, w[weight_name])
        if skip is not None:
            outs = b.op("SkipSimplifiedLayerNormalization", [x, skip, g], outputs=[f"skn_{b.n}_y", f"skn_{b.n}_m",
                        f"skn_{b.n}_i", f"skn_{b.n}_sum"], domain="com.microsoft", epsilon=1e-5)
            return outs[0], outs[3]
        return b.op("SimplifiedLayerNormalization", [x, g], axis=-1, epsilon=1e-5, stash_type=1)

    # ---- once per call: embedding (uint8 per-row), rotary rows, causal mask, scatter index ----
    ids, pos = "input_ids", "position_ids"
    e = "m_embed_tokens_Gather_output_0_E"
    eq = b.op("Gather", [b.const(e + "q", w[e + "q"]), ids])
    es = b.op("Gather", [b.const(e + "scale", w[e + "scale"]), ids])
    ez = b.op("Gather", [b.const(e + "zp", w[e + "zp"]), ids])
    x = b.op("Mul", [b.op("Sub", [b.op("Cast", [eq], to=TensorProto.FLOAT), ez]), es])
    c_ax1 = b.const("axes_1", i64(1))
    if rotary == "slices":  # rows of the rotary tables [B,1,T,hd], gathered once
        cos = b.op("Unsqueeze", [b.op("Gather", [b.const("rotary_cos", w["/m/Constant_output_0"]), pos]), c_ax1])
        sin = b.op("Unsqueeze", [b.op("Gather", [b.const("rotary_sin", w["/m/Constant_2_output_0"]), pos]), c_ax1])
    width = b.op("Gather", [b.op("Shape", ["past_key_values.0.key"]), b.const("idx_2", np.array(2, np.int64))], axis=0)
    keys = b.op("Range", [b.const("zero_i64", np.array(0, np.int64)), width, b.const("one_i64", np.array(1, np.int64))])
    c_scale = b.const("attn_scale", np.array(1.0 / np.sqrt(hd), np.float32))
    c_neg = b.const("attn_masked", np.array(np.finfo(np.float32).min, np.float32))
    if attention == "rowwise":
        # mask [B,1,1,T,1,W]: key j visible to the token at position p iff j <= p (scores are [B,kvh,rep,T,1,W])
        pos6 = b.op("Unsqueeze", [pos, b.const("axes_1_2_4_5", i64(1, 2, 4, 5))])
        mask = b.op("LessOrEqual", [keys, pos6])
    else:  # grouped
        # mask [B,1,rep*T,W] for the scores [B,kvh,rep*T,W]: row r*T + t of a kv head is query head r's token t
        pos_rep = b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [pos, c_ax1]), b.const("shape_1_rep_1", i64(1, rep, 1))]),
                                   b.const("shape_0_m1", i64(0, -1))])  # [B, rep*T]
        mask = b.op("LessOrEqual", [keys, b.op("Unsqueeze", [pos_rep, b.const("axes_1_3g", i64(1, 3))])])
    pos4 = b.op("Unsqueeze", [pos, b.const("axes_1_3", i64(1, 3))])  # [B,1,T,1]
    scatter_index = None
    half = hd // 2
    c_h0, c_h1, c_h2 = b.const("half_0", i64(0)), b.const("half_1", i64(half)), b.const("half_2", i64(hd))
    c_axis3 = b.const("axis_3", i64(3))
    split_qk = b.const("split_qk", i64(heads, kvh))
    # RotaryEmbedding's caches are [positions, hd / 2]: the tables' first half (their halves are equal)
    cos_t, sin_t = w["/m/Constant_output_0"], w["/m/Constant_2_output_0"]
    assert np.array_equal(cos_t[:, :half], cos_t[:, half:]) and np.array_equal(sin_t[:, :half], sin_t[:, half:])
    if rotary == "contrib":
        c_cos_half = b.const("rotary_cos_half", np.ascontiguousarray(cos_t[:, :half]))
        c_sin_half = b.const("rotary_sin_half", np.ascontiguousarray(sin_t[:, :half]))
    c_bs_h_d = b.const("shape_0_0_h_d", i64(0, 0, heads + 2 * kvh, hd))
    c_q6 = b.const("shape_q6", i64(0, kvh, rep, -1, 1, hd))
    if attention != "rowwise":
        c_qg, c_og = b.const("shape_qg", i64(0, kvh, -1, hd)), b.const("shape_og", i64(0, heads, -1, hd))
        c_ax2, c_ax3 = b.const("axes_2", i64(2)), b.const("axes_3", i64(3))
    c_bs_hidden = b.const("shape_0_0_hidden", i64(0, 0, hidden))
    c_ax23 = b.const("axes_2_3", i64(2, 3))
    c_split3 = b.const("split_qkv_heads", i64(heads + kvh, kvh))

    def nd_index(k):
        """ScatterND indices [B,kvh,T,3] = (row, kv head, position) for k [B,kvh,T,hd]: each token's hd-vector is
        written as one contiguous slice (ScatterElements moves it element by element)."""
        shp = b.op("Shape", [k])
        bth = b.op("Concat", [b.op("Slice", [shp, b.const("dims_0", i64(0)), b.const("dims_3", i64(3))]),
                              b.const("dim_1", i64(1))], axis=0)  # [B,kvh,T,1]
        rows = b.op("Range", [b.const("zero_i64r", np.array(0, np.int64)),
                              b.op("Gather", [shp, b.const("idx_0", np.array(0, np.int64))], axis=0),
                              b.const("one_i64r", np.array(1, np.int64))])
        rows = b.op("Unsqueeze", [rows, b.const("axes_1_2_3", i64(1, 2, 3))])  # [B,1,1,1]
        heads_ = b.const("kv_head_ids", np.arange(kvh, dtype=np.int64).reshape(1, kvh, 1, 1))
        return b.op("Concat", [b.op("Expand", [t, bth]) for t in (rows, heads_, pos4)], axis=-1)

    resid = x
    h = norm(x, "m.model.layers.0.input_layernorm.weight")
    for i in range(layers):
        p = f"m_layers.{i}_self_attn_"
        qkv = linear(h, [p + "q_proj_MatMul_output_0", p + "k_proj_MatMul_output_0", p + "v_proj_MatMul_output_0"],
                     f"l{i}_qkv")
        qkv = b.op("Transpose", [b.op("Reshape", [qkv, c_bs_h_d])], perm=[0, 2, 1, 3])  # [B, heads+2kvh, T, hd]
        qk, v = b.op("Split", [qkv, c_split3], outputs=[f"l{i}_qk", f"l{i}_v"], axis=1)
        # rotary (q and k together): x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
        if rotary == "contrib":  # one kernel; rows of the half tables gathered by position_ids inside it
            qk = b.op("RotaryEmbedding", [qk, pos, c_cos_half, c_sin_half], domain="com.microsoft", interleaved=0)
        else:
            x1 = b.op("Slice", [qk, c_h0, c_h1, c_axis3])
            x2 = b.op("Slice", [qk, c_h1, c_h2, c_axis3])
            rot = b.op("Concat", [b.op("Neg", [x2]), x1], axis=-1)
            qk = b.op("Add", [b.op("Mul", [qk, cos]), b.op("Mul", [rot, sin])])
        q, k = b.op("Split", [qk, split_qk], outputs=[f"l{i}_q", f"l{i}_k"], axis=1)
        if scatter_index is None and scatter == "nd":
            scatter_index = nd_index(k)
        elif scatter_index is None:
            scatter_index = b.op("Expand", [pos4, b.op("Shape", [k])])  # [B,kvh,T,hd]: each token's position
        if kv == "fp16":  # the cache holds float16: the new keys rounded once on the way in, the attention reads
            # the cache widened back to float32 (exact), so a key's bits do not depend on how it was fed
            assert scatter == "nd", "--kv fp16 is written with --scatter nd"
            k16 = b.op("Cast", [k], to=TensorProto.FLOAT16)
            v16 = b.op("Cast", [v], to=TensorProto.FLOAT16)
            pk = b.op("Cast", [b.op("ScatterND", [f"past_key_values.{i}.key", scatter_index, k16], [f"present.{i}.key"])],
                      to=TensorProto.FLOAT)
            pv = b.op("Cast", [b.op("ScatterND", [f"past_key_values.{i}.value", scatter_index, v16],
                                    [f"present.{i}.value"])], to=TensorProto.FLOAT)
        elif scatter == "nd":
            pk = b.op("ScatterND", [f"past_key_values.{i}.key", scatter_index, k], [f"present.{i}.key"])
            pv = b.op("ScatterND", [f"past_key_values.{i}.value", scatter_index, v], [f"present.{i}.value"])
        else:
            pk = b.op("ScatterElements", [f"past_key_values.{i}.key", scatter_index, k], [f"present.{i}.key"], axis=2)
            pv = b.op("ScatterElements", [f"past_key_values.{i}.value", scatter_index, v], [f"present.{i}.value"], axis=2)
        if attention in ("grouped", "mixed"):
            # one product per (row, kv head) with M = rep*T query rows (never M = 1 since rep >= 2), so every call
            # takes the same packed-GEMM path whatever T and B: each score is the same sequence of FMAs over hd
            assert rep >= 2, "grouped attention needs >= 2 query heads per kv head (an M=1 product takes another path)"
            qg = b.op("Reshape", [q, c_qg])  # [B,kvh,rep*T,hd]
            s = b.op("FusedMatMul", [qg, pk], domain="com.microsoft", transA=0, transB=1, transBatchA=0,
                     transBatchB=0, alpha=float(1.0 / np.sqrt(hd)))  # [B,kvh,rep*T,W]
            s = b.op("Softmax", [b.op("Where", [mask, s, c_neg])], axis=-1)
            if attention == "grouped":
                o = b.op("Reshape", [b.op("MatMul", [s, pv]), c_og])  # [B,heads,T,hd]
                o = b.op("Reshape", [b.op("Transpose", [o], perm=[0, 2, 1, 3]), c_bs_hidden])  # [B,T,hidden]
            else:  # mixed: probabilities @ V row by row (M=1, alpha 1: MLAS's unpacked gemv, no copy of V)
                s = b.op("Unsqueeze", [s, c_ax3])  # [B,kvh,rep*T,1,W]
                o = b.op("MatMul", [s, b.op("Unsqueeze", [pv, c_ax2])])  # [B,kvh,rep*T,1,hd]
                o = b.op("Reshape", [o, c_og])  # [B,heads,T,hd]
                o = b.op("Reshape", [b.op("Transpose", [o], perm=[0, 2, 1, 3]), c_bs_hidden])  # [B,T,hidden]
        else:
            # row-wise attention (one M=1 product per query row over all W keys), K^T read in place (FusedMatMul transB)
            q6 = b.op("Reshape", [q, c_q6])  # [B,kvh,rep,T,1,hd]
            if fused_scores:  # what ORT makes of MatMul(q, Transpose(K)), with the 1/sqrt(hd) scale as its alpha
                s = b.op("FusedMatMul", [q6, b.op("Unsqueeze", [pk, c_ax23])], domain="com.microsoft", transA=0, transB=1,
                         transBatchA=0, transBatchB=0, alpha=float(1.0 / np.sqrt(hd)))
            else:
                kt = b.op("Transpose", [b.op("Unsqueeze", [pk, c_ax23])], perm=[0, 1, 2, 3, 5, 4])  # [B,kvh,1,1,hd,W]
                s = b.op("Mul", [b.op("MatMul", [q6, kt]), c_scale])
            s = b.op("Softmax", [b.op("Where", [mask, s, c_neg])], axis=-1)
            o = b.op("MatMul", [s, b.op("Unsqueeze", [pv, c_ax23])])  # [B,kvh,rep,T,1,hd]
            o = b.op("Reshape", [b.op("Transpose", [o], perm=[0, 3, 1, 2, 4, 5]), c_bs_hidden])  # [B,T,hidden]
        o = linear(o, [p + "o_proj_MatMul_output_0"], f"l{i}_o")
        mp = f"m_layers.{i}_mlp_"
        if skip_norm:
            h, resid = norm(o, f"m.model.layers.{i}.post_attention_layernorm.weight", skip=resid)
        else:
            resid = b.op("Add", [resid, o])
            h = norm(resid, f"m.model.layers.{i}.post_attention_layernorm.weight")
        gu = linear(h, [mp + "gate_proj_MatMul_output_0", mp + "up_proj_MatMul_output_0"], f"l{i}_gate_up")
        inter = w[mp + "up_proj_MatMul_output_0_Wscale"].shape[0]
        gate, up = b.op("Split", [gu, b.const(f"split_gu_{i}", i64(inter, inter))], outputs=[f"l{i}_gate", f"l{i}_up"],
                        axis=-1)
        act = b.op("Mul", [b.op("QuickGelu", [gate], domain="com.microsoft", alpha=1.0), up])
        d = linear(act, [mp + "down_proj_MatMul_output_0"], f"l{i}_down")
        nxt = f"m.model.layers.{i + 1}.input_layernorm.weight" if i + 1 < layers else "m.model.norm.weight"
        if skip_norm:
            h, resid = norm(d, nxt, skip=resid)
        else:
            resid = b.op("Add", [resid, d])
            h = norm(resid, nxt)
    logits = linear(h, ["logits"], "lm_head")
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_out"))

    inputs, outputs = list(m.graph.input), list(m.graph.output)
    if kv == "fp16":
        for v in inputs + outputs:
            if v.name.startswith(("past_key_values.", "present.")):
                v.type.tensor_type.elem_type = TensorProto.FLOAT16
    g = helper.make_graph(b.nodes, "tandem_fused", inputs, outputs, b.inits)
    out = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                            producer_name="tandem fuse_graph.py")
    out.ir_version = 10
    for k, v in meta.items():
        out.metadata_props.add(key=k, value=v)
    out.metadata_props.add(key="tandem.fused", value=f"matmul={matmul} quantize={quantize} block={block} "
                                                      f"accuracy={accuracy} skip_norm={skip_norm} rotary={rotary} "
                                                      f"fused_scores={fused_scores} attention={attention} scatter={scatter} kv={kv}")
    return out


def check_data(out):
    """OnnxCheck's inputs for the rewritten graphs: ref.bin (a held-out token sequence for the invariance checks;
    its reference logits are zeros, since an int8 graph is checked for invariance, not against torch: OnnxCheck's
    "vs torch" numbers are meaningless here), heldout.bin (the held-out verses <s> ... </s>, for the per-verse
    perplexity) and heldout_passages.bin (the held-out passages at context 1024, the model cards' passage ppl)."""
    import os, struct, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import data
    seq = [t for p in data.heldout_prompts(200)[:12] for t in p][:140]
    with open(os.path.join(out, "ref.bin"), "wb") as f:
        f.write(struct.pack("<iii", 0x4D444E54, len(seq), 4096))
        f.write(np.array(seq, "<i8").tobytes())
        f.write(np.zeros(len(seq) * 4096, "<f4").tobytes())
        for part in (seq[:12], seq[12:28]):  # "prompt" and "torch greedy" (not compared for int8 graphs)
            f.write(struct.pack("<i", len(part)))
            f.write(np.array(part, "<i8").tobytes())
    _, _, held = data.load("heldout")
    _, _, _, passages = data.load_passages("heldout", 1024)
    for name, docs in (("heldout.bin", held), ("heldout_passages.bin", passages)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack("<i", len(docs)))
            for d in docs:
                doc = [data.BOS] + d + [data.EOS]
                f.write(struct.pack("<i", len(doc)))
                f.write(np.array(doc, "<i8").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src")
    ap.add_argument("--out", required=True, help="the graph to write (with --check-data: a directory)")
    ap.add_argument("--check-data", action="store_true", help="write OnnxCheck's ref.bin and heldout.bin into --out")
    ap.add_argument("--matmul", choices=["integer", "nbits8", "nbits4", "nbits4sym"], default="integer")
    ap.add_argument("--quantize", choices=["chain", "qlinear"], default="chain")
    ap.add_argument("--block", type=int, default=128, help="MatMulNBits block size (halved until it divides K)")
    ap.add_argument("--accuracy", type=int, default=4, help="MatMulNBits accuracy_level (4: int8 activations)")
    ap.add_argument("--skip-norm", action="store_true")
    ap.add_argument("--rotary", choices=["slices", "contrib"], default="slices",
                    help="contrib: com.microsoft RotaryEmbedding (one node for q and k)")
    ap.add_argument("--fused-scores", action="store_true",
                    help="q @ K^T as FusedMatMul(transB, alpha = 1/sqrt(head_dim)): no Mul node")
    ap.add_argument("--attention", choices=["rowwise", "grouped", "mixed"], default="rowwise",
                    help="grouped: one product per kv head over its rep*T query rows (M >= 2 always) instead of one "
                         "M=1 product per query row; mixed: the scores grouped, probabilities @ V row-wise")
    ap.add_argument("--scatter", choices=["elements", "nd"], default="elements",
                    help="nd: the new keys/values written with ScatterND (one hd-vector slice per token)")
    ap.add_argument("--kv", choices=["fp32", "fp16"], default="fp32",
                    help="fp16: the cache (past/present) in float16, widened to float32 for the attention (measurement)")
    a = ap.parse_args()
    if a.check_data:
        check_data(a.out)
        return
    model = build(a.src, a.matmul, a.quantize, a.block, a.accuracy, a.skip_norm, a.rotary, a.fused_scores, a.attention,
                  a.scatter, a.kv)
    onnx.save(model, a.out)
    print(f"{a.out}: {len(model.graph.node)} nodes ({dict(p.split('=') for p in model.metadata_props[-1].value.split())})")


if __name__ == "__main__":
    main()
