"""ALOHA-layout episodes written with h5py, the way ALOHA's own recorders write them, for Tendon's reader.

act-plus-plus `record_episodes.py` (raw images) and ALOHA 2 (`compress=True`: JPEG via cv2.imencode,
zero-padded to the longest frame, `/compress_len` [cameras, T]). cv2 is replaced by Pillow (same JPEG
bitstream format); the layout is what matters. Deterministic content so the Swift test can check values:
  qpos[t, j]   = 0.01 * t + j          qvel[t, j] = -0.5 * t + j
  effort[t, j] = 100 + t * 14 + j      action[t, j] = qpos[t, j] + 0.001
  raw image pixel [t, y, x, c] = (t * 7 + y * 3 + x * 5 + c * 11) % 256
  compressed frames: a flat colour (t * 10, 128, 255 - t * 10) per pixel, so JPEG decoding returns it
  within a few levels.
Joint datasets are float32 here because ALOHA creates them without a dtype (h5py default f4); Tendon
writes float64 and reads either.

    /opt/tendon-ref/bin/python Tools/reference/hdf5_fixtures.py --out Tests/Fixtures/hdf5
"""
import argparse
import io
import os

import h5py
import numpy as np
from PIL import Image

T, H, W = 20, 24, 32
CAMERAS = ["cam_high", "cam_left_wrist"]


def joints():
    t = np.arange(T, dtype=np.float64)[:, None]
    j = np.arange(14, dtype=np.float64)[None, :]
    qpos = 0.01 * t + j
    return qpos, -0.5 * t + j, 100 + t * 14 + j, qpos + 0.001


def write_raw(path):
    qpos, qvel, effort, action = joints()
    t, y, x, c = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), np.arange(3), indexing="ij")
    pixels = ((t * 7 + y * 3 + x * 5 + c * 11) % 256).astype(np.uint8)
    with h5py.File(path, "w", rdcc_nbytes=1024 ** 2 * 2) as root:
        root.attrs["sim"] = True
        obs = root.create_group("observations")
        image = obs.create_group("images")
        for cam in CAMERAS:
            image.create_dataset(cam, (T, H, W, 3), dtype="uint8", chunks=(1, H, W, 3))[...] = pixels
        obs.create_dataset("qpos", (T, 14), dtype="f4")[...] = qpos
        obs.create_dataset("qvel", (T, 14), dtype="f4")[...] = qvel
        obs.create_dataset("effort", (T, 14), dtype="f4")[...] = effort
        root.create_dataset("action", (T, 14), dtype="f4")[...] = action


def write_compressed(path):
    qpos, qvel, effort, action = joints()
    encoded = {cam: [] for cam in CAMERAS}
    for cam_index, cam in enumerate(CAMERAS):
        for t in range(T):
            frame = np.zeros((H, W, 3), dtype=np.uint8)
            frame[...] = (t * 10, 128, 255 - t * 10 - cam_index)
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=50)
            encoded[cam].append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    padded_size = max(len(e) for frames in encoded.values() for e in frames)
    compress_len = np.array([[len(e) for e in encoded[cam]] for cam in CAMERAS], dtype=np.float32)
    with h5py.File(path, "w") as root:
        root.attrs["sim"] = False
        root.attrs["compress"] = True
        obs = root.create_group("observations")
        image = obs.create_group("images")
        for cam in CAMERAS:
            data = np.zeros((T, padded_size), dtype=np.uint8)
            for t, e in enumerate(encoded[cam]):
                data[t, : len(e)] = e
            image.create_dataset(cam, (T, padded_size), dtype="uint8", chunks=(1, padded_size))[...] = data
        obs.create_dataset("qpos", (T, 14), dtype="f4")[...] = qpos
        obs.create_dataset("qvel", (T, 14), dtype="f4")[...] = qvel
        obs.create_dataset("effort", (T, 14), dtype="f4")[...] = effort
        root.create_dataset("action", (T, 14), dtype="f4")[...] = action
        root.create_dataset("compress_len", (len(CAMERAS), T), dtype="f4")[...] = compress_len


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_raw(os.path.join(args.out, "h5py_raw.hdf5"))
    write_compressed(os.path.join(args.out, "h5py_compressed.hdf5"))
