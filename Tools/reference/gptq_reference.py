"""GPTQ reference (Frantar et al. 2023) for Q8_0 / Q4_0, written independently of the Swift GPTQ in float64
PyTorch; group scales come from gguf's own quantizer. Writes Tests/Fixtures/gptq/gptq_fixture.safetensors:

  weight         f16 [48, 256]   gaussian W (f16-exact values, used as f32)
  inputs         i8  [600, 256]  calibration X; H = XᵀX/600 in float64 is bit-identical everywhere because
                                 every XᵀX entry is an integer below 2⁵³ (the f64 H itself would be 512 KB)
  q8_0, q4_0     f32 [48, 256]   GPTQ-quantized W, dequantized
  proxy_q8_0 ... f64 [1]         tr((W−Q)H(W−Q)ᵀ)/48 for GPTQ and for gguf round-to-nearest (rtn_*)

X = round(4·Z·A) with a random mixing A (correlated columns), four channels scaled ×8 and one column never
active (a dead column, H_ii = 0). Run: /opt/tendon-ref/bin/python Tools/reference/gptq_reference.py
"""
import os
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize
from safetensors.torch import save_file

ROWS, COLS, SAMPLES, GROUP, BATCH = 48, 256, 600, 32, 128


def group_scale(values: np.ndarray, qtype) -> torch.Tensor:
    """gguf's f16 block scale d for each row of values [rows, 32] (float32), as float64."""
    blocks = quantize(np.ascontiguousarray(values, dtype=np.float32), qtype)
    return torch.from_numpy(blocks[:, 0:2].copy().view(np.float16).astype(np.float64)[:, 0])


def round_half_away(t: torch.Tensor) -> torch.Tensor:
    return torch.sign(t) * torch.floor(t.abs() + 0.5)


def nearest(x: torch.Tensor, d: torch.Tensor, qtype) -> torch.Tensor:
    """Nearest grid value to x for the fixed scale d: Q8_0 code·d, code in −127…127; Q4_0 (code−8)·d, 0…15."""
    safe = torch.where(d == 0, torch.ones_like(d), d)
    t = torch.where(d == 0, torch.zeros_like(x), round_half_away(x / safe))
    if qtype == T.Q8_0:
        return t.clamp(-127, 127) * d
    return ((t + 8).clamp(0, 15) - 8) * d


def gptq(w: torch.Tensor, h: torch.Tensor, qtype, damp=0.01) -> torch.Tensor:
    W = w.double().clone()
    H = h.double().clone()
    n = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.diag(H).mean() * torch.eye(n, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    for b0 in range(0, n, BATCH):
        b1 = min(b0 + BATCH, n)
        W1 = W[:, b0:b1].clone()
        E = torch.zeros_like(W1)
        for c in range(b1 - b0):
            col = b0 + c
            if col % GROUP == 0:
                d = group_scale(W1[:, c:c + GROUP].float().numpy(), qtype)
            q = nearest(W1[:, c], d, qtype)
            Q[:, col] = q
            e = (W1[:, c] - q) / U[col, col]
            W1[:, c:] -= torch.outer(e, U[col, col:b1])
            E[:, c] = e
        W[:, b1:] -= E @ U[b0:b1, b1:]
    return Q


def proxy(w: torch.Tensor, q: torch.Tensor, h: torch.Tensor) -> float:
    D = w.double() - q.double()
    return float(torch.trace(D @ h @ D.T) / w.shape[0])


def main():
    g = torch.Generator().manual_seed(20260525)
    W = torch.randn(ROWS, COLS, generator=g, dtype=torch.float64).half().float()
    Z = torch.randn(SAMPLES, COLS, generator=g, dtype=torch.float64)
    A = torch.eye(COLS, dtype=torch.float64) + torch.randn(COLS, COLS, generator=g, dtype=torch.float64) / COLS ** 0.5
    X = 4 * Z @ A
    X[:, [3, 77, 140, 201]] *= 8
    X[:, 7] = 0
    X = X.round().clamp(-127, 127)
    H = X.T @ X / SAMPLES
    assert torch.equal(H, H.T)
    out = {"weight": W.half().contiguous(), "inputs": X.to(torch.int8).contiguous()}
    for name, qtype in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0)):
        Q = gptq(W, H, qtype)
        rtn = torch.from_numpy(dequantize(quantize(W.numpy(), qtype), qtype))
        out[name] = Q.float().contiguous()
        pg, pr = proxy(W, Q.float(), H), proxy(W, rtn, H)
        out["proxy_" + name] = torch.tensor([pg], dtype=torch.float64)
        out["rtn_" + name] = torch.tensor([pr], dtype=torch.float64)
        print(f"{name}: proxy GPTQ {pg:.6g}  RTN {pr:.6g}  ratio {pg / pr:.4f}")
    here = os.path.dirname(os.path.abspath(__file__))
    dest = os.path.join(here, "..", "..", "Tests", "Fixtures", "gptq")
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, "gptq_fixture.safetensors")
    save_file(out, path)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
