"""Hashing, one way everywhere: configuration keys, file and content digests, path ids.

``config_key`` is how every configuration (feature sets, samplings, encoders, the detector,
stacks) gets its short stable identity; ``file_sha256`` is how weights and exported models are
identified; ``chunks_sha256`` digests content given in pieces (a model's tensors);
``path_key`` is a file's id by its absolute path (ingest's video ids). All are pure functions of
their input, and the only users of :mod:`hashlib` in the package.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable

__all__ = ["config_key", "chunks_sha256", "file_sha256", "path_key", "text_sha256"]


def config_key(config: dict, inputs: list | None = None) -> str:
    """A short (12 hex digits) stable hash of a configuration and the versions of its inputs."""
    payload = json.dumps({"config": config, "inputs": inputs or []}, sort_keys=True, default=str)
    return text_sha256(payload)[:12]


def text_sha256(text: str) -> str:
    """The SHA-256 hex digest of ``text`` (UTF-8)."""
    return chunks_sha256([text.encode()])


def chunks_sha256(chunks: Iterable[bytes]) -> str:
    """The SHA-256 hex digest of the concatenation of ``chunks``."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB pieces."""
    with open(path, "rb") as handle:
        return chunks_sha256(iter(lambda: handle.read(1 << 20), b""))


def path_key(path: str | os.PathLike) -> str:
    """A file's stable id by where it is: the SHA-1 of its absolute path's bytes, 16 hex digits."""
    return hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:16]
