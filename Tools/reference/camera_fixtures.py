#!/usr/bin/env python3
"""MJPEG decode fixtures for Tests/TendonHardwareTests/CameraFormatTests.swift.

Encodes a small synthetic picture (gradients, colour bars, a sharp-edged square) with Pillow as a
baseline 4:2:0 JPEG — what UVC cameras send as MJPEG — and writes, next to it, the raw RGB that
Pillow decodes from that JPEG and the source RGB it was encoded from. The Swift decoder (libjpeg-turbo
through TurboJPEG) must match Pillow's decode closely and the source approximately.

Run with the reference environment: .venv-reference/bin/python Tools/reference/camera_fixtures.py
"""
import argparse
import json
import pathlib

from PIL import Image

W, H = 48, 32


def source():
    img = Image.new("RGB", (W, H))
    px = img.load()
    bars = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    for y in range(H):
        for x in range(W):
            if y < H // 2:
                px[x, y] = bars[x * len(bars) // W]
            else:
                px[x, y] = (x * 255 // (W - 1), (y - H // 2) * 255 // (H // 2 - 1), 128)
    for y in range(20, 28):
        for x in range(8, 16):
            px[x, y] = (10, 200, 30)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/cameras")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    img = source()
    jpeg = out / "pattern.jpg"
    img.save(jpeg, format="JPEG", quality=90, subsampling=2, optimize=False, progressive=False)
    decoded = Image.open(jpeg).convert("RGB")
    (out / "pattern_pillow.rgb").write_bytes(decoded.tobytes())
    (out / "pattern_source.rgb").write_bytes(img.tobytes())
    (out / "pattern.json").write_text(json.dumps({"width": W, "height": H, "quality": 90, "subsampling": "4:2:0",
                                                 "pillow": Image.__version__}, indent=1) + "\n")


if __name__ == "__main__":
    main()
