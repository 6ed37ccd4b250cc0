"""Fixtures for TendonTensor tests: gguf.quants (de)quantization, f16/bf16 conversion, torch kernels.

Run: /opt/tendon-ref/bin/python Tools/reference/tensor_fixtures.py  (writes Tests/Fixtures/tensor/*.json)
Arrays are stored as little-endian hex strings ("f32"/"u8"/"u16" keys say the element type), so every
bit (NaN payloads, -0.0, subnormals) survives.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as Q
from gguf import quants

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tensor")
rng = np.random.default_rng(20261125)


def hexf(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes().hex()


def hexb(a):
    return np.ascontiguousarray(a, dtype=np.uint8).tobytes().hex()


def hexu16(a):
    return np.ascontiguousarray(a, dtype="<u2").tobytes().hex()


def write(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def conversions():
    edge = [0.0, -0.0, 1.0, -1.0, 65504.0, 65505.0, 65519.0, 65520.0, 1e9, -1e9, np.inf, -np.inf, np.nan,
            2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -15, 6.1e-5,
            1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.4028235e38, 1e-40,
            -1e-45, 0.1, 0.2, 0.3, 1 / 3]
    x = np.array(edge, dtype=np.float32)
    bits = rng.integers(0, 2 ** 32, size=1500, dtype=np.uint64).astype(np.uint32)
    # Random values concentrated on the f16/bf16 range boundaries, plus uniformly random bit patterns.
    near = (rng.standard_normal(1500) * np.exp2(rng.integers(-30, 20, 1500))).astype(np.float32)
    x = np.concatenate([x, bits.view(np.float32), near])
    x = x[~np.isnan(x) | (np.arange(len(x)) < len(edge))]  # keep only the canonical NaN from the edge list
    f16 = x.astype(np.float16).view(np.uint16)
    bf16 = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    # Decoding: every f16 bit pattern's f32 value would be 256 KB; a strided sample plus all subnormals.
    h = np.concatenate([np.arange(0, 0x400, dtype=np.uint16), np.arange(0, 0x10000, 97, dtype=np.uint16),
                        np.array([0x7C00, 0xFC00, 0x7BFF, 0x8001, 0x3C00], dtype=np.uint16)])
    hf = h.view(np.float16).astype(np.float32)
    b = np.arange(0, 0x10000, 89, dtype=np.uint16)
    bf = torch.from_numpy(b.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    write("conversions.json", {"f32": hexf(x), "f16_u16": hexu16(f16), "bf16_u16": hexu16(bf16),
                               "f16_in_u16": hexu16(h), "f16_out_f32": hexf(hf),
                               "bf16_in_u16": hexu16(b), "bf16_out_f32": hexf(bf)})


def simple_quants():
    rows = []
    z = np.zeros(32, np.float32)
    rows.append(z)
    rows.append(np.full(32, 1.0, np.float32))
    rows.append(np.full(32, -3.5, np.float32))
    r = np.linspace(-127, 127, 32).astype(np.float32)
    rows.append(r)
    # Ties for Q8_0 (x/d = k + 0.5) and for Q4_0 (x·id + 8.5 landing on integers).
    t = np.array([127.0] + [k + 0.5 for k in range(-15, 16)], np.float32)
    rows.append(t)
    rows.append(np.array([-8.0] + [k * 0.5 for k in range(-8, 23)], np.float32))
    rows.append(np.array([8.0, -8.0] + [1.0] * 30, np.float32))  # argmax picks the first of ±max
    rows.append(np.array([-8.0, 8.0] + [-1.0] * 30, np.float32))
    rows.append(np.array([65504.0, -65504.0] + list(rng.standard_normal(30) * 1000), np.float32))
    rows.append(np.array([1e-8] * 16 + [-1e-8] * 16, np.float32))
    rows.append(np.array([6e-8, -3e-8] + [0.0] * 30, np.float32))
    rows.append(np.array([0.25 * k for k in range(32)], np.float32))
    for scale in [1e-3, 1.0, 50.0]:
        rows.extend((rng.standard_normal((6, 32)) * scale).astype(np.float32))
    x = np.stack(rows).reshape(-1, 64)  # rows of two blocks
    out = {"rows": int(x.shape[0]), "row_length": 64, "input_f32": hexf(x)}
    for name, qt in [("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0)]:
        qb = quants.quantize(x, qt)
        out[name + "_u8"] = hexb(qb)
        out[name + "_dequant_f32"] = hexf(quants.dequantize(qb, qt))
    write("quants_q8_0_q4_0.json", out)


def k_quants():
    out = {}
    n_blocks = 6
    # Q4_K: random scale bytes and nibbles, d/dmin modest f16 values.
    b = rng.integers(0, 256, size=(n_blocks, 144), dtype=np.uint8)
    d = (rng.random(n_blocks) * 0.01 + 1e-4).astype(np.float16).view(np.uint8).reshape(-1, 2)
    dmin = (rng.random(n_blocks) * 0.01).astype(np.float16).view(np.uint8).reshape(-1, 2)
    b[:, 0:2] = d
    b[:, 2:4] = dmin
    out["q4_k_u8"] = hexb(b)
    out["q4_k_dequant_f32"] = hexf(quants.dequantize(b.reshape(-1), Q.Q4_K).reshape(-1))
    b6 = rng.integers(0, 256, size=(n_blocks, 210), dtype=np.uint8)
    b6[:, 208:210] = (rng.random(n_blocks) * 0.01 + 1e-4).astype(np.float16).view(np.uint8).reshape(-1, 2)
    out["q6_k_u8"] = hexb(b6)
    out["q6_k_dequant_f32"] = hexf(quants.dequantize(b6.reshape(-1), Q.Q6_K).reshape(-1))
    # Q5_K: random bytes (scales, fifth bits qh, nibbles) under modest f16 d/dmin. Drawn after Q4_K/Q6_K so
    # their fixtures keep their values.
    b5 = rng.integers(0, 256, size=(n_blocks, 176), dtype=np.uint8)
    b5[:, 0:2] = (rng.random(n_blocks) * 0.01 + 1e-4).astype(np.float16).view(np.uint8).reshape(-1, 2)
    b5[:, 2:4] = (rng.random(n_blocks) * 0.01).astype(np.float16).view(np.uint8).reshape(-1, 2)
    out["q5_k_u8"] = hexb(b5)
    out["q5_k_dequant_f32"] = hexf(quants.dequantize(b5.reshape(-1), Q.Q5_K).reshape(-1))
    out["blocks"] = n_blocks
    write("quants_k.json", out)


def kernels():
    torch.manual_seed(7)
    out = {}
    T, D = 5, 48
    x = torch.randn(T, D)
    w = torch.randn(D) * 0.1
    eps = 1e-6

    def rms(v):
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)

    out["rms_x"] = hexf(x.numpy()); out["rms_w"] = hexf(w.numpy()); out["rms_T"] = T; out["rms_D"] = D
    out["rms_mul"] = hexf((rms(x) * w).numpy())             # Llama/Qwen3: x·w
    out["rms_one_plus"] = hexf((rms(x) * (1.0 + w)).numpy())  # Qwen3.5: x·(1+w)
    out["layernorm"] = hexf(F.layer_norm(x, (D,), eps=eps).numpy())
    out["softmax"] = hexf(torch.softmax(x * 3, dim=-1).numpy())
    out["l2norm"] = hexf(F.normalize(x, p=2.0, dim=-1, eps=1e-6).numpy())
    u = torch.linspace(-12, 12, 97)
    out["act_x"] = hexf(u.numpy())
    out["silu"] = hexf(F.silu(u).numpy())
    out["gelu_tanh"] = hexf(F.gelu(u, approximate="tanh").numpy())
    out["sigmoid"] = hexf(torch.sigmoid(u).numpy())
    out["softplus"] = hexf(F.softplus(u).numpy())

    # RoPE: Qwen3.5 text (partial rotary 0.25 of head_dim 32 → 8 dims rotate, mrope_section [2, 1, 1],
    # interleaved). Positions [3, T] differ per axis as they would for image tokens.
    from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig
    from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5TextRotaryEmbedding, apply_rotary_pos_emb
    H, hd, Tn = 3, 32, 7
    cfg = Qwen3_5TextConfig(hidden_size=96, num_attention_heads=H, num_key_value_heads=1, head_dim=hd,
                            rope_parameters={"rope_type": "default", "rope_theta": 10000000.0,
                                             "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                                             "mrope_interleaved": True})
    cfg.head_dim = hd
    emb = Qwen3_5TextRotaryEmbedding(cfg)
    pos = torch.tensor([[0, 1, 2, 3, 3, 3, 40], [0, 1, 2, 3, 4, 5, 41], [0, 1, 2, 5, 6, 7, 42]])
    q = torch.randn(1, H, Tn, hd)
    cos, sin = emb(q, pos[:, None, :])
    qe, _ = apply_rotary_pos_emb(q, q, cos, sin)
    out["rope_q"] = hexf(q[0].transpose(0, 1).numpy())  # stored [T, H, hd]
    out["rope_positions"] = pos.tolist()
    out["rope_heads"] = H; out["rope_head_dim"] = hd; out["rope_T"] = Tn
    out["rope_rotary_dim"] = int(emb.inv_freq.numel() * 2); out["rope_theta"] = 10000000.0
    out["rope_mrope_section"] = [2, 1, 1]
    out["rope_inv_freq"] = hexf(emb.inv_freq.numpy())
    out["rope_mrope_out"] = hexf(qe[0].transpose(0, 1).numpy())
    # Plain 1-D RoPE over the whole head (action expert): all three axes equal.
    pos1 = torch.tensor([0, 1, 2, 9, 100, 1000, 5000])
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float) / hd))
    fr = pos1[:, None].float() * inv
    e = torch.cat([fr, fr], -1)
    qf, _ = apply_rotary_pos_emb(q, q, e.cos()[None], e.sin()[None])
    out["rope_full_positions"] = pos1.tolist()
    out["rope_full_out"] = hexf(qf[0].transpose(0, 1).numpy())

    # Depthwise causal conv1d: weight [C, 1, k] as nn.Conv1d(groups=C, padding=k-1), output cut to T.
    C, k, Tc = 6, 4, 9
    xc = torch.randn(Tc, C)
    wc = torch.randn(C, 1, k)
    yc = F.conv1d(xc.t()[None], wc, padding=k - 1, groups=C)[0, :, :Tc].t()
    out["conv_x"] = hexf(xc.numpy()); out["conv_w"] = hexf(wc[:, 0].numpy()); out["conv_y"] = hexf(yc.numpy())
    out["conv_C"] = C; out["conv_k"] = k; out["conv_T"] = Tc
    write("kernels.json", out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    conversions()
    simple_quants()
    k_quants()
    kernels()
