#!/usr/bin/env python3
"""Experiment (issue 15, branch prof): rewrite a slots-layout graph's attention so that a batched decode step
stops copying every row's whole KV cache, to measure what that copying costs. Not part of the model factory.

ONNX Runtime's node profile of the slots target (SlotsStepScalingTest#ortNodeProfile) shows that most of the
cost a row adds to a batched decode step is not the model's compute but three copies of the row's keys/values
per layer, each over the full cache width W, whatever the row's length:
  /self_attn/Pad, Pad_1   pad K and V to a multiple of 64 (pads 0 columns when W is a multiple of 64, which the
                          engine guarantees, yet ORT's Pad still writes a full copy)
  /self_attn/Transpose_5  materialises K^T for q @ K^T (an Unsqueeze between the Transpose and the MatMul
                          keeps ORT from fusing the transpose into the MatMul)

Variants written next to each other as model directories (the other files copied from the source):
  nopad  drops the two Pads (consumers read present.* directly). Bit for bit the same graph whenever W is a
         multiple of 64 (checked: SlotsStepScalingTest#compareGraphs, 0 logits differ).
  fused  nopad, and drops Transpose_5: the scores MatMul becomes com.microsoft FusedMatMul(transB=1) over the
         un-transposed keys. NOT bit-identical to the shipped graph (a different MLAS kernel path, so different
         rounding; greedy agreed on the test's 72 tokens); a re-export doing the same (e.g. unsqueeze before the
         transpose, so ORT fuses it itself) would need the factory's checks (OnnxCheck step/batch/placement).

Usage: slots_attention_rewrite.py SRC_MODEL_DIR OUT_PREFIX nopad|fused
Needs no onnx package (offline machine): a minimal protobuf wire-format reader/writer is below.
"""
import os
import shutil
import struct
import sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7f) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    """A message's fields as (number, wire type, raw bytes), in order."""
    i, out = 0, []
    while i < len(b):
        k, i = varint(b, i)
        f, w = k >> 3, k & 7
        if w == 0:
            _, j = varint(b, i)
            out.append((f, w, b[i:j]))
            i = j
        elif w == 2:
            n, j = varint(b, i)
            out.append((f, w, b[j:j + n]))
            i = j + n
        elif w == 5:
            out.append((f, w, b[i:i + 4]))
            i += 4
        elif w == 1:
            out.append((f, w, b[i:i + 8]))
            i += 8
        else:
            raise ValueError("wire type %d" % w)
    return out


def enc_varint(v):
    o = bytearray()
    while True:
        c = v & 0x7f
        v >>= 7
        if v:
            o.append(c | 0x80)
        else:
            o.append(c)
            return bytes(o)


def build(fs):
    o = bytearray()
    for f, w, v in fs:
        o += enc_varint(f << 3 | w)
        if w == 2:
            o += enc_varint(len(v))
        o += v
    return bytes(o)


def node_info(nb):
    """NodeProto: input (1), output (2), name (3), op_type (4)."""
    ins, outs, name, op = [], [], '', ''
    for f, _, v in fields(nb):
        if f == 1:
            ins.append(v.decode())
        elif f == 2:
            outs.append(v.decode())
        elif f == 3:
            name = v.decode()
        elif f == 4:
            op = v.decode()
    return name, op, ins, outs


def attr_int(name, val):  # AttributeProto: name (1), i (3), type (20) = INT (2)
    return build([(1, 2, name.encode()), (3, 0, enc_varint(val)), (20, 0, enc_varint(2))])


def main(src, prefix, variant):
    dst = prefix + '-' + variant
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if f != 'model.onnx':
            shutil.copy(os.path.join(src, f), dst)
    model = fields(open(os.path.join(src, 'model.onnx'), 'rb').read())
    gi = [i for i, (f, _, _) in enumerate(model) if f == 7][0]  # ModelProto.graph
    graph = fields(model[gi][2])
    rename, drop = {}, set()
    for i, (f, _, v) in enumerate(graph):
        if f != 1:  # GraphProto.node
            continue
        name, op, ins, outs = node_info(v)
        if op == 'Pad' and '/self_attn/Pad' in name or variant == 'fused' and op == 'Transpose' and name.endswith(
                '/self_attn/Transpose_5'):
            rename[outs[0]] = ins[0]
            drop.add(i)

    def resolve(t):
        while t in rename:
            t = rename[t]
        return t

    out, fused = [], 0
    for i, (f, w, v) in enumerate(graph):
        if f == 1:
            if i in drop:
                continue
            name, op, _, _ = node_info(v)
            nf = [(ff, ww, resolve(vv.decode()).encode()) if ff == 1 else (ff, ww, vv) for ff, ww, vv in fields(v)]
            if variant == 'fused' and op == 'MatMul' and name.endswith('/self_attn/MatMul'):
                nf = [x for x in nf if x[0] not in (4, 7)]
                nf += [(4, 2, b'FusedMatMul'), (7, 2, b'com.microsoft'), (5, 2, attr_int('transB', 1))]
                fused += 1
            v = build(nf)
        out.append((f, w, v))
    model[gi] = (7, 2, build(out))
    if variant == 'fused':  # ModelProto.opset_import for the com.microsoft domain
        model.insert(gi, (8, 2, build([(1, 2, b'com.microsoft'), (2, 0, enc_varint(1))])))
    open(os.path.join(dst, 'model.onnx'), 'wb').write(build(model))
    print('%s: dropped %d nodes, %d MatMul -> FusedMatMul: %s' % (variant, len(drop), fused, dst))


if __name__ == '__main__':
    if len(sys.argv) != 4 or sys.argv[3] not in ('nopad', 'fused'):
        sys.exit(__doc__)
    main(*sys.argv[1:])
