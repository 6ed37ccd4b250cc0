"""Validates a Tendon-written episode with h5py against the ALOHA layout (TendonData/EpisodeLayout.swift).

    /opt/tendon-ref/bin/python Tools/reference/check_episode.py Tests/Fixtures/hdf5/tendon_episode.hdf5
    /opt/tendon-ref/bin/python Tools/reference/check_episode.py OUT_DIR/episode_0.hdf5 ...

Exit 0 and one "ok" line per file, or exit 1 naming the first problem.
"""
import sys

import h5py
import numpy as np


def check(path):
    with h5py.File(path, "r") as root:
        assert isinstance(root.attrs["sim"], (bool, np.bool_)), f"sim should be a bool, got {type(root.attrs['sim'])}"
        assert isinstance(root.attrs["task"], str), "task should be a str attribute"
        qpos = root["/observations/qpos"]
        assert qpos.dtype == np.float64 and qpos.ndim == 2 and qpos.shape[1] == 14, f"qpos {qpos.dtype} {qpos.shape}"
        T = qpos.shape[0]
        for name in ["/observations/qvel", "/observations/effort", "/action"]:
            d = root[name]
            assert d.dtype == np.float64 and d.shape == (T, 14), f"{name} {d.dtype} {d.shape}"
            assert np.isfinite(d[...]).all(), f"{name} has non-finite values"
        ts = root["/observations/timestamps"][...]
        assert ts.shape == (T,) and ts[0] == 0 and (np.diff(ts) > 0).all(), "timestamps must start at 0 and increase"
        compress = bool(root.attrs.get("compress", False))
        cams = list(root["/observations/images"].keys())
        for cam in cams:
            img = root[f"/observations/images/{cam}"]
            assert img.dtype == np.uint8 and img.shape[0] == T, f"{cam} {img.dtype} {img.shape}"
            if compress:
                assert img.ndim == 2, f"{cam}: compressed images are [T, maxlen]"
            else:
                assert img.ndim == 4 and img.shape[3] == 3, f"{cam}: raw images are [T, H, W, 3]"
                assert img.chunks[0] == 1, f"{cam}: one chunk per frame expected, got {img.chunks}"
        if compress and cams:
            lengths = root["/compress_len"][...]
            assert lengths.shape == (len(cams), T), f"compress_len {lengths.shape}"
            first = root[f"/observations/images/{root.attrs['camera_names'].split(',')[0]}"][0]
            assert bytes(first[:2]) == b"\xff\xd8", "compressed frames must be JPEG (SOI marker)"
        for name in ["fps", "achieved_hz", "rate_ok", "dropped_frames"]:
            assert name in root.attrs, f"missing root attribute {name}"
        print(f"ok {path}: T={T} cameras={cams} compress={compress} task={root.attrs['task']!r} "
              f"achieved_hz={root.attrs['achieved_hz']:.1f}")


if __name__ == "__main__":
    try:
        for p in sys.argv[1:]:
            check(p)
    except (AssertionError, KeyError, OSError) as e:
        print(f"check_episode: {e}", file=sys.stderr)
        sys.exit(1)
