"""K-quant encoder fixtures from ggml's own reference quantizers (quantize_row_q{4,5,6}_K_ref).

gguf.quants (Python) decodes every k-quant but encodes none of them, so this script compiles ggml's
ggml-quants.c, as vendored in the pinned ggml-python sdist, into a throwaway shared library and calls it
through ctypes. No ggml code enters the project; the fixture holds only inputs and ggml's output bytes.

Run: /opt/tendon-ref/bin/python Tools/reference/ggml_quantizer_fixtures.py
     (needs a C compiler and PyPI; writes Tests/Fixtures/tensor/ggml_k_quantizers.json)
"""
import ctypes
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import quants

GGML_PYTHON = "ggml-python==0.0.45"  # vendors the ggml revision whose ggml-quants.c is compiled
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tensor", "ggml_k_quantizers.json")
ROW = 512

# Error paths of ggml-quants.c call into ggml.c; the *_ref quantizers never reach them.
STUBS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
void ggml_abort(const char *file, int line, const char *fmt, ...) { fprintf(stderr, "ggml_abort %s:%d\n", file, line); abort(); }
size_t ggml_row_size(int type, int64_t ne) { (void)type; (void)ne; abort(); }
const char *ggml_type_name(int type) { (void)type; return "?"; }
size_t ggml_type_size(int type) { (void)type; abort(); }
"""


def build_library(work):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", "ggml-python",
                    GGML_PYTHON, "-d", work], check=True)
    sdist = next(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    root = next(os.path.join(work, d) for d in os.listdir(work) if d.startswith("ggml_python-"))
    ggml = os.path.join(root, "vendor", "ggml")
    stubs = os.path.join(work, "stubs.c")
    with open(stubs, "w") as f:
        f.write(STUBS)
    lib = os.path.join(work, "libggmlq.so")
    # Baseline x86-64 and no fast-math, like the project's own C: no FMA contraction, IEEE rounding.
    subprocess.run(["cc", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-std=gnu11", "-I", os.path.join(ggml, "include"),
                    "-I", os.path.join(ggml, "src"), os.path.join(ggml, "src", "ggml-quants.c"), stubs,
                    "-o", lib, "-lm"], check=True)
    return ctypes.CDLL(lib)


def inputs():
    rng = np.random.default_rng(20261126)
    rows = [rng.standard_normal(ROW) * 0.02,                       # weight-like
            rng.standard_normal(ROW) * np.exp2(rng.integers(-4, 5, ROW)),  # scales vary per value
            np.abs(rng.standard_normal(ROW)) * 0.1 + 0.05,          # all positive: min clamped to 0
            -np.abs(rng.standard_normal(ROW)) * 0.1,                # all negative
            np.where(rng.random(ROW) < 0.02, 3.0, 0.01) * rng.standard_normal(ROW),  # outliers
            np.concatenate([np.zeros(256), np.full(256, 0.37)]),    # a zero and a constant super-block
            rng.uniform(-1, 1, ROW) * 1e-3]
    rows += [rng.standard_normal(ROW) * 10.0 ** rng.uniform(-3, 0) for _ in range(17)]  # plain Gaussian rows
    return np.stack(rows).astype(np.float32)


def main():
    x = inputs()
    out = {"row_length": ROW, "rows": int(x.shape[0]),
           "input_f32": np.ascontiguousarray(x, dtype="<f4").tobytes().hex(), "ggml": GGML_PYTHON}
    with tempfile.TemporaryDirectory() as work:
        lib = build_library(work)
        for name, qt, fn in [("q4_k", Q.Q4_K, lib.quantize_row_q4_K_ref),
                             ("q5_k", Q.Q5_K, lib.quantize_row_q5_K_ref),
                             ("q6_k", Q.Q6_K, lib.quantize_row_q6_K_ref)]:
            block, size = quants.GGML_QUANT_SIZES[qt]
            blocks = np.zeros(x.size // block * size, dtype=np.uint8)
            src = np.ascontiguousarray(x)
            fn(ctypes.c_void_p(src.ctypes.data), ctypes.c_void_p(blocks.ctypes.data), ctypes.c_int64(x.size))
            decoded = quants.dequantize(blocks, qt).reshape(x.shape)
            rel = float(np.sqrt(((decoded - x) ** 2).sum() / (x ** 2).sum()))
            print(f"{name}: {blocks.size} bytes, relative RMS error {rel:.4f}")
            out[name + "_u8"] = blocks.tobytes().hex()
    import json
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
