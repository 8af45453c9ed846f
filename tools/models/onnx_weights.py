#!/usr/bin/python3
"""The weights of a packaged ONNX graph read back as a Hugging Face Llama state dict (numpy float32, [out, in]),
without torch, for from_onnx.py (which rebuilds a checkpoint) and tools/bench/peers/onnx_to_gguf.py (which runs in
a chroot without torch and writes llama.cpp's format).

- fp32 graph (models/kjv-draft/model_fp32.onnx): MatMul weight initializers are W = weight.T.
- int8 graph (models/kjv-target/model.onnx, quantize.py): MatMulInteger with uint8 W [K, N] plus a per-column
  scale and zero point -> weight.T = (W - zp) * scale; the uint8 per-row embedding likewise (E = (Eq - zp) * scale).
Each linear layer is found by the name of the MatMul output it produces ("/m/layers.3/mlp/up_proj/MatMul_output_0"
-> model.layers.3.mlp.up_proj.weight); the norms keep their parameter names.
"""
import re

import numpy as np
import onnx
from onnx import numpy_helper


def module_of(output_name):
    """'/m/layers.3/mlp/up_proj/MatMul_output_0' -> 'model.layers.3.mlp.up_proj'; 'logits' -> 'lm_head'."""
    if output_name == "logits":
        return "lm_head"
    m = re.fullmatch(r"/m/(?:model/)?(.*)/MatMul_output_0", output_name)
    if not m:
        raise SystemExit("unexpected MatMul output %r" % output_name)
    return "model." + m.group(1).replace("/", ".")


def read_weights(path):
    g = onnx.load(path).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    sd = {}
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in init:
            sd[module_of(n.output[0]) + ".weight"] = init[n.input[1]].T.astype(np.float32)
        elif n.op_type == "MatMulInteger":
            base = n.name[:-len("_MatMulInteger")]
            # the float result keeps the original MatMul's output name: i32 -> Cast -> Mul(xs) -> Mul(ws) = output
            out = next(m for m in g.node if m.op_type == "Mul" and m.name == base + "_Mul").output[0]
            q = init[n.input[1]].astype(np.float32)
            zp = init[n.input[3]].astype(np.float32)
            scale = init[base + "_Wscale"].astype(np.float32)
            sd[module_of(out) + ".weight"] = ((q - zp[None, :]) * scale[None, :]).T
        elif n.op_type == "Gather" and n.input[0] in init and init[n.input[0]].ndim == 2:
            if n.input[0].endswith("_Eq"):
                base = n.input[0][:-3]
                sd["model.embed_tokens.weight"] = ((init[n.input[0]].astype(np.float32) - init[base + "_Ezp"])
                                                   * init[base + "_Escale"])
            elif init[n.input[0]].shape[0] > 1000 and not re.search(r"_E(scale|zp)$", n.input[0]):
                sd["model.embed_tokens.weight"] = init[n.input[0]].astype(np.float32)
    for name, arr in init.items():  # RMSNorm weights keep their torch names (prefix "m." from the export wrapper)
        if name.startswith("m.") and name.endswith("norm.weight"):
            sd[name[2:]] = arr.astype(np.float32)
    return sd
