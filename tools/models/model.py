"""Llama-architecture decoder (RMSNorm, rotary in the HF half-rotation layout, grouped-query
attention, SwiGLU), parameter names as in Hugging Face's LlamaForCausalLM.

One forward serves training (no cache) and the ONNX export (KV cache, attention_mask,
position_ids; several new tokens after a past allowed; causal mask by index in past+current).
`Llama.forward_slots` is the export of the "slots" KV layout (/work/notes/slots.md, NOTES.md "Slots").
"""
import json, math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # name: dim, layers, heads, kv_heads, hidden
    "draft":   dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=352),
    # second edition's larger draft candidate (~2.4M parameters): issue 18 sizes the draft by the served speed-up
    "d-256x2": dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=704),
    "t-384x8": dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=3, intermediate_size=1024),
    "t-512x6": dict(hidden_size=512, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4, intermediate_size=1408),
    "t-512x8": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, intermediate_size=1408),
}


@dataclass
class Config:
    vocab_size: int = 4096
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 352
    max_position_embeddings: int = 256
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    @staticmethod
    def preset(name, **kw):
        d = dict(PRESETS[name]); d.update(kw)
        return Config(**d)

    def hf_config(self):
        return {
            "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 1, "eos_token_id": 2, "head_dim": self.head_dim, "hidden_act": "silu",
            "hidden_size": self.hidden_size, "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings, "mlp_bias": False,
            "model_type": "llama", "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers, "num_key_value_heads": self.num_key_value_heads,
            "pretraining_tp": 1, "rms_norm_eps": self.rms_norm_eps, "rope_scaling": None,
            "rope_theta": self.rope_theta, "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "float32", "use_cache": True, "vocab_size": self.vocab_size,
        }


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def padded_length(t):
    """Keys attended over in the exported graph: t rounded up to a multiple of Attention.pad_multiple."""
    m = Attention.pad_multiple
    return (t + m - 1) // m * m


class Attention(nn.Module):
    # Export sets `row_wise`: a token's logits must not depend on how many tokens the call carries, or
    # greedy assisted decoding (which verifies k+1 tokens in one call) could differ from plain decoding
    # (one token per call) at a near-tie. With the usual attention they did, up to 0.1 in the int8 logits
    # (per-token activation rounding amplifies last-bit float differences), for two reasons:
    # - ONNX Runtime's MLAS runs an M=1 float MatMul as GEMV and M>1 as GEMM (another summation order).
    #   Here attention is one M=1 product per query row (broadcast batch dims, which also do grouped-query
    #   attention without materialising the repeated keys and values).
    # - a row's softmax and weighted sum run over past+s keys; a different length changes how the kernels
    #   vectorise the sum (which elements share a lane, which fall in the scalar tail). Here keys and values
    #   are zero-padded (and masked) to a multiple of `pad_multiple`, so a position sees the same length
    #   whether decoded alone, verified in a block or prefilled (padding adds exact zeros to the same lanes).
    #   The slots layout does not pad: its cache width W is the key length and is a multiple of 64 by
    #   contract (ONNX Runtime's Pad copies the whole cache even when it adds nothing).
    # Same maths as the plain form (used for training); see NOTES.md "Step invariance".
    row_wise = False
    pad_multiple = 64

    def __init__(self, c: Config):
        super().__init__()
        self.h, self.kvh, self.hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.kvh * self.hd, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.kvh * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, c.hidden_size, bias=False)

    def forward(self, x, cos, sin, keep, past_k=None, past_v=None, slots=None):
        """slots [b,s] (slots layout only): write the new keys/values into the past [b,kvh,W,hd] at these
        positions (ScatterElements in ONNX) instead of appending them after it."""
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if slots is not None:
            idx = slots[:, None, :, None].expand(b, self.kvh, s, self.hd)
            k = past_k.scatter(2, idx, k)
            v = past_v.scatter(2, idx, v)
        elif past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        present = (k, v)
        rep = self.h // self.kvh
        if Attention.row_wise:
            t = k.shape[2]
            if slots is not None:
                # slots layout: the cache width W is a multiple of 64 by contract (/work/notes/slots.md), so no
                # padding (a Pad, even of 0 columns, copies the whole cache in ONNX Runtime), and K^T is the
                # last two axes swapped AFTER the broadcast axes are added: ONNX Runtime then fuses the Transpose
                # into the MatMul (FusedMatMul transB, reads K in place) instead of materialising K^T per step
                tp = t
                kt = k[:, :, None, None].transpose(-1, -2)
            else:
                tp = padded_length(t)
                k = F.pad(k, (0, 0, 0, tp - t))
                v = F.pad(v, (0, 0, 0, tp - t))
                kt = k.transpose(2, 3)[:, :, None, None]
            # [b,kvh,rep,s,1,d] x [b,kvh,1,1,d,tp] -> [b,kvh,rep,s,1,tp]: one M=1 product per query row and head
            att = torch.matmul(q.reshape(b, self.kvh, rep, s, 1, self.hd), kt)
            att = att.reshape(b, self.h, s, tp) * (1.0 / math.sqrt(self.hd))
            att = torch.where(keep, att, torch.tensor(torch.finfo(att.dtype).min, dtype=att.dtype))
            att = F.softmax(att, dim=-1)
            # [b,kvh,rep,s,1,tp] x [b,kvh,1,1,tp,d] -> [b,kvh,rep,s,1,d]
            y = torch.matmul(att.reshape(b, self.kvh, rep, s, 1, tp), v[:, :, None, None])
            y = y.reshape(b, self.h, s, self.hd).transpose(1, 2).reshape(b, s, self.h * self.hd)
            return self.o_proj(y), present
        if rep > 1:  # GQA: expand + reshape (not repeat_interleave: keeps shapes dynamic in ONNX)
            t = k.shape[2]
            k = k[:, :, None, :, :].expand(b, self.kvh, rep, t, self.hd).reshape(b, self.h, t, self.hd)
            v = v[:, :, None, :, :].expand(b, self.kvh, rep, t, self.hd).reshape(b, self.h, t, self.hd)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.hd))
        att = torch.where(keep, att, torch.tensor(torch.finfo(att.dtype).min, dtype=att.dtype))
        att = F.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, s, self.h * self.hd)
        return self.o_proj(y), present


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, cos, sin, keep, past_k=None, past_v=None, slots=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, keep, past_k, past_v, slots)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class Backbone(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Llama(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.model = Backbone(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float32) / c.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)
        # the slots export's rotary tables (forward_slots): row p = cos/sin of position p, computed by the same
        # float32 formula as rotary() (the one training uses), for every position the engine's slot pool can
        # feed: max_position_embeddings rounded up to a multiple of 64 (the pool width)
        cos_t, sin_t = self.rotary(torch.arange(padded_length(c.max_position_embeddings))[None])
        self.register_buffer("rotary_cos", cos_t[0, 0].contiguous(), persistent=False)  # [pool width, hd]
        self.register_buffer("rotary_sin", sin_t[0, 0].contiguous(), persistent=False)
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.num_hidden_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def rotary(self, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]  # [b,1,s,hd]

    def forward_slots(self, input_ids, position_ids, past):
        """The "slots" KV layout (export only, with Attention.row_wise): past is a list of (k, v)
        [b,kvh,W,hd], one slot per position; every token's keys/values are written at its position_ids
        entry and it attends to the slots j <= its position (causal mask from position_ids, no
        attention_mask). Each row's keys sit at their own positions with only masked slots after them, so
        a row's logits do not depend on the other rows of the call nor on W (batch invariance, see
        /work/notes/slots.md). Returns logits [b,s,V] and the presents (the pasts with the new slots)."""
        assert Attention.row_wise, "the slots layout is exported with the row-wise attention"
        # cos/sin gathered from constant tables (ONNX Gather: exact), not computed in the graph: ONNX Runtime's
        # CPU Cos/Sin give an angle different last bits depending on where it sits in the tensor (vectorised
        # body or scalar tail), so a token alone ([1,1,hd] angles) and the same token inside a batch
        # ([B,T,hd]) got different rotations, breaking batch invariance (~3e-6 in the logits, which the
        # int8 activation rounding can amplify). The table holds the bits torch computes (rotary()).
        cos = F.embedding(position_ids, self.rotary_cos)[:, None]  # [b,1,s,hd]
        sin = F.embedding(position_ids, self.rotary_sin)[:, None]
        # no padding to a multiple of 64 here: the contract requires W % 64 == 0 (see Attention.forward)
        width = past[0][0].shape[2]
        keep = torch.arange(width)[None, None, None, :] <= position_ids[:, None, :, None]  # [b,1,s,width]
        x = self.model.embed_tokens(input_ids)
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, pr = layer(x, cos, sin, keep, past[i][0], past[i][1], slots=position_ids)
            presents.append(pr)
        return self.lm_head(self.model.norm(x)), presents

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None, return_hidden=False, slots=False):
        """slots=True: forward_slots (called through here so that the ONNX node names carry this module's
        scope, as in the Optimum export: quantize.py names the weights after them).
        input_ids [b,s]; attention_mask [b,past+s] (1 keep, 0 masked) or None;
        position_ids [b,s] or None (= past..past+s-1); past: list of (k,v) [b,kvh,past,hd] or None.
        Returns logits [b,s,V], presents list of (k,v)."""
        if slots:
            return self.forward_slots(input_ids, position_ids, past)
        b, s = input_ids.shape
        past_len = 0 if past is None else past[0][0].shape[2]
        total = past_len + s
        if position_ids is None:
            position_ids = (torch.arange(s) + past_len)[None, :].expand(b, s)
        cos, sin = self.rotary(position_ids)
        q_idx = torch.arange(s) + past_len
        width = padded_length(total) if Attention.row_wise else total
        k_idx = torch.arange(width)
        keep = (k_idx[None, :] <= q_idx[:, None])[None, None]  # [1,1,s,width]
        if attention_mask is not None:
            if Attention.row_wise:
                attention_mask = F.pad(attention_mask, (0, width - total))
            keep = keep & (attention_mask[:, None, None, :] > 0)
        x = self.model.embed_tokens(input_ids)
        presents = []
        for i, layer in enumerate(self.model.layers):
            pk, pv = (None, None) if past is None else past[i]
            x, pr = layer(x, cos, sin, keep, pk, pv)
            presents.append(pr)
        x = self.model.norm(x)
        if return_hidden:
            return x
        return self.lm_head(x), presents


def load_checkpoint(path):
    ck = torch.load(path, map_location="cpu")
    c = Config(**ck["config"])
    m = Llama(c)
    m.load_state_dict(ck["model"])
    m.eval()
    return m, ck
