#!/usr/bin/env python3
"""Where quantization error comes from, on the reference config (`qwen_vla_bench.py build`): the PyTorch
reference policy with weights replaced by their round trip through Tendon's own quantizers (the C row
quantizers of Sources/CTendonKernels, loaded with ctypes) and, optionally, activations rounded per 32 values
the way the packed GEMM rounds them. Prints max |Δa'| against the f32 chunk of the timed observation.

  activations   Q8_0 weights alone, int8 activations alone, both, and 15-bit activations (why Q8_0 weights
                take `ActivationQuantization.wide`).
  families      one tensor family at a time at Q4_K, the rest Q8_0 (how `HFToGGUFConverter.keepsEightBit`
                was chosen).

Build the quantizers first:
  cc -O2 -shared -fPIC -mavx2 -mf16c -mfma Sources/CTendonKernels/tk_numerics.c Sources/CTendonKernels/tk_dot.c \\
     -I Sources/CTendonKernels/include -o /tmp/libtk.so
Usage: /opt/tendon-ref/bin/python Tools/reference/quant_sensitivity.py --model /tmp/tendon-bench-act/hf activations|families
"""
import argparse
import ctypes
import os
import re
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen_vla  # noqa: E402
from qwen_vla_bench import INSTRUCTION  # noqa: E402

BLOCK = {"q8_0": (32, 34), "q4_k": (256, 144)}
KEEP_F16 = ("context_proj", "time_embed", "action_in", "final", "modulation")  # HFToGGUFConverter.keepsHalfPrecision


def roundtrip(lib, w, kind):
    if kind == "f16":
        return w.half().float()
    n = w.shape[1]
    elems, nbytes = BLOCK[kind]
    if n % elems:
        return w.half().float()
    x = np.ascontiguousarray(w.numpy(), dtype=np.float32)
    out = np.empty_like(x)
    buf = (ctypes.c_uint8 * (n // elems * nbytes))()
    fp = ctypes.POINTER(ctypes.c_float)
    quantize, dequantize = getattr(lib, f"tk_quantize_row_{kind}"), getattr(lib, f"tk_dequantize_row_{kind}")
    for r in range(x.shape[0]):
        quantize(x[r].ctypes.data_as(fp), buf, ctypes.c_int64(n))
        dequantize(buf, out[r].ctypes.data_as(fp), ctypes.c_int64(n))
    return torch.from_numpy(out)


def round_activations(x, bits):
    """Per 32 values: scale amax / (2^(bits-1) - 1), round to nearest (the packed GEMM's activations)."""
    n = x.shape[-1]
    if bits is None or n % 32:
        return x
    blocks = x.reshape(-1, n // 32, 32)
    top = (1 << (bits - 1)) - 1
    d = blocks.abs().amax(-1, keepdim=True) / top
    q = torch.where(d > 0, torch.round(blocks / torch.where(d > 0, d, torch.ones_like(d))), torch.zeros_like(blocks))
    return (q.clamp(-top, top) * d).reshape(x.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--lib", default="/tmp/libtk.so")
    ap.add_argument("what", choices=["activations", "families"])
    args = ap.parse_args()
    lib = ctypes.CDLL(args.lib)
    vla = qwen_vla.QwenVLA(args.model)
    images = {"cam_high": Image.open(os.path.join(args.model, "cam_high.png")).convert("RGB")}
    noise = load_file(os.path.join(args.model, "noise.safetensors"))["noise"]
    reference = vla.act("aloha", INSTRUCTION, noise, 10, images)["actions_normalized"]
    linears = {f"bb.{n}": m for n, m in vla.backbone.named_modules() if isinstance(m, torch.nn.Linear)}
    linears.update({f"ex.{n}": m for n, m in vla.expert.named_modules() if isinstance(m, torch.nn.Linear)})
    original = {n: m.weight.data.clone() for n, m in linears.items()}
    cache = {}

    def shipped(kind):
        return lambda n: "f16" if n.startswith("ex.") and any(k in n for k in KEEP_F16) else kind

    def run(kind_of, bits_of, label):
        hooks = []
        for n, m in linears.items():
            kind = kind_of(n)
            if kind != "f32":
                cache.setdefault((n, kind), None)
                if cache[(n, kind)] is None:
                    cache[(n, kind)] = roundtrip(lib, original[n], kind)
                m.weight.data = cache[(n, kind)]
            bits = bits_of(n)
            if bits:
                hooks.append(m.register_forward_pre_hook(lambda mod, a, b=bits: (round_activations(a[0], b),)))
        chunk = vla.act("aloha", INSTRUCTION, noise, 10, images)["actions_normalized"]
        for h in hooks:
            h.remove()
        for n, m in linears.items():
            m.weight.data = original[n]
        print(f"{label:62s} max |Δa'| {(chunk - reference).abs().max().item():.4f}", flush=True)

    if args.what == "activations":
        run(shipped("q8_0"), lambda n: None, "Q8_0 weights, f32 activations")
        run(lambda n: "f32", lambda n: 8, "f32 weights, int8 activations")
        run(shipped("q8_0"), lambda n: 8, "Q8_0 weights, int8 activations")
        run(shipped("q8_0"), lambda n: 16, "Q8_0 weights, 15-bit activations")
    else:
        families = {}
        for n in linears:
            families.setdefault(re.sub(r"\.\d+\.", ".*.", n), []).append(n)
        run(shipped("q8_0"), lambda n: None, "all Q8_0")
        for family, names in sorted(families.items()):
            if shipped("q4_k")(names[0]) != "q4_k" or family.endswith("lm_head"):
                continue
            members = set(names)
            size = sum(original[n].numel() for n in names) / 1e6
            run(lambda n: "q4_k" if n in members else shipped("q8_0")(n), lambda n: None, f"{family} at Q4_K ({size:.2f}M)")


if __name__ == "__main__":
    main()
