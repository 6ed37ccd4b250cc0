"""Pillow BICUBIC resizes whose pass order matters (Pillow 13 runs the vertical pass first when the height
loses more than twice as many pixels as the width; python-pillow/Pillow#9549).

Writes Tests/Fixtures/vision/resize_passes.safetensors: for each case i, `<i>.source` [h, w, 3] u8 and
`<i>.resized` [H, W, 3] u8 = PIL.Image.resize((W, H), BICUBIC). Case 0 is the decoded
Tests/Fixtures/qwen_vla/vlm_c/cam_high.png (28×20 → 32×16); the rest are seeded random RGB.
Run with /opt/tendon-ref/bin/python (Pillow 13.0.0, numpy 2.4.6, safetensors 0.8.0).
"""
import os

import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# (w, h) → (W, H). Mixed directions both ways, both-shrink on each side of the "height loses > 2× the
# width's pixels" boundary (2.0 stays horizontal-first, 2.1 goes vertical-first), both-grow, and a few
# seeded random sizes.
CASES = [
    ((28, 20), (32, 16)), ((20, 28), (16, 32)), ((33, 17), (40, 12)), ((17, 33), (12, 40)),
    ((40, 60), (30, 40)), ((40, 60), (30, 39)), ((60, 40), (50, 20)), ((60, 40), (50, 19)),
    ((30, 80), (20, 60)), ((30, 80), (20, 59)), ((12, 43), (4, 15)), ((45, 8), (38, 3)),
    ((15, 16), (23, 28)), ((24, 21), (20, 12)),
]


def main():
    assert PIL.__version__ == "13.0.0", PIL.__version__
    rng = np.random.default_rng(2026)
    cases = list(CASES)
    while len(cases) < len(CASES) + 6:
        w, h, W, H = (int(v) for v in rng.integers(3, 40, 4))
        if w != W and h != H:
            cases.append(((w, h), (W, H)))
    tensors = {}
    for i, ((w, h), (W, H)) in enumerate(cases):
        if i == 0:
            src = Image.open(os.path.join(ROOT, "Tests/Fixtures/qwen_vla/vlm_c/cam_high.png")).convert("RGB")
            assert src.size == (w, h)
        else:
            src = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        out = src.resize((W, H), resample=Image.Resampling.BICUBIC)
        tensors[f"{i}.source"] = np.ascontiguousarray(np.asarray(src))
        tensors[f"{i}.resized"] = np.ascontiguousarray(np.asarray(out))
        print(f"{i}: {w}x{h} → {W}x{H}")
    save_file(tensors, os.path.join(ROOT, "Tests/Fixtures/vision/resize_passes.safetensors"))


if __name__ == "__main__":
    main()
