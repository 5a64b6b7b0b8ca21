"""Shared test fixtures: the real media beside the repository, and blank workspaces.

Area-specific fixtures live in the area's own test modules (or tests/_<area>_helpers.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
MEDIA = (REPO.parent / "shared" / "media").resolve()


@pytest.fixture(scope="session")
def media() -> Path:
    """``../shared/media``: real camera-trap clips, other videos and photos (read-only)."""
    if not MEDIA.exists():
        pytest.fail(f"the shared media folder {MEDIA} is missing: tests need ../shared beside the repo")
    return MEDIA


@pytest.fixture()
def workspace(tmp_path):
    """A blank workspace in a temporary directory (no database yet)."""
    from jungle.store.workspace import Workspace

    return Workspace.resolve(tmp_path / "ws")


@pytest.fixture(scope="session")
def stacked(tmp_path_factory):
    """(StackWorkspace, StackResult): a synthetic workspace with one saved stack, built once per
    session (tests/_stack_helpers.py). Do not change it: copy it to change anything."""
    from _stack_helpers import build_stacked_workspace

    return build_stacked_workspace(tmp_path_factory.mktemp("stacked") / "ws")


@pytest.fixture(scope="session")
def predicted(stacked, tmp_path_factory):
    """(StackWorkspace, model id, Workspace): the stacked workspace with sites, recording times and
    every video predicted, built once per session (tests/_export_helpers.py). Copy it to change it."""
    from _export_helpers import build_export_workspace

    return build_export_workspace(stacked, tmp_path_factory.mktemp("export") / "ws")


@pytest.fixture(scope="session")
def megadetector_file():
    """Path of the verified MegadetectorLite weights (``yolox_tiny_640_20220528.pth``), fetched once."""
    from _detector_helpers import fetch_or_skip

    return fetch_or_skip()
