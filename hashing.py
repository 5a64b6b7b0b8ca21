"""Hashing, one way everywhere: configuration keys and file digests.

``config_key`` is how every configuration (feature sets, samplings, encoders, the detector,
stacks) gets its short stable identity; ``file_sha256`` is how weights and exported models are
identified. Both are pure functions of their input.
"""

from __future__ import annotations

import hashlib
import json
import os

__all__ = ["config_key", "file_sha256", "text_sha256"]


def config_key(config: dict, inputs: list | None = None) -> str:
    """A short (12 hex digits) stable hash of a configuration and the versions of its inputs."""
    payload = json.dumps({"config": config, "inputs": inputs or []}, sort_keys=True, default=str)
    return text_sha256(payload)[:12]


def text_sha256(text: str) -> str:
    """The SHA-256 hex digest of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
