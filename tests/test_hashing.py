"""Hashing keeps every stored identity: video ids, weight digests (an encoder's hub weights are
digested as its tensors' names and bytes in pieces) and config keys are the same bytes they were
when each was written; the formulas are restated here with hashlib itself."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from jungle.hashing import chunks_sha256, config_key, file_sha256, path_key, text_sha256
from jungle.ingest.discover import video_id


def test_video_ids_are_the_sha1_of_the_absolute_path(tmp_path):
    for name in ("clip.mp4", "Ünïcode site/clip 01.AVI", "a/../b/c.mov"):
        path = tmp_path / name
        expected = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:16]
        assert video_id(path) == path_key(str(path)) == expected
    assert video_id(tmp_path / "a.mp4") != video_id(tmp_path / "b.mp4")


def test_file_text_and_chunk_digests(tmp_path):
    data = np.random.default_rng(0).bytes(3 << 20)  # three read pieces
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest() == chunks_sha256([data[:5], data[5:]])
    assert text_sha256("éa") == hashlib.sha256("éa".encode()).hexdigest()


def test_config_key_formula():
    config, inputs = {"b": 1, "a": [1, 2]}, [{"name": "lite0", "version": 2}]
    payload = json.dumps({"config": config, "inputs": inputs}, sort_keys=True, default=str)
    assert config_key(config, inputs) == hashlib.sha256(payload.encode()).hexdigest()[:12]
    assert config_key(config) == config_key(config, []) != config_key(config, inputs)
