"""Shared test fixtures: the real media, and blank workspaces.

Two media folders: ``media`` is ``tests/media``, a small licence-clean set committed with the
code (``tests/media/LICENSES.md``), present on every checkout; ``shared_media`` is
``../shared/media`` beside the repository (CI has it), for the tests that need footage whose
licence keeps it out of the repository: without it they skip with the reason. Both folders share
one layout, so a relative path means the same file in either.

Area-specific fixtures live in the area's own test modules (or tests/_<area>_helpers.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
MEDIA = Path(__file__).resolve().parent / "media"
SHARED_MEDIA = (REPO.parent / "shared" / "media").resolve()


@pytest.fixture(scope="session")
def media() -> Path:
    """``tests/media``: the committed clips (zamba's 19 in AVI, MP4 and ASF, a cut-short AVI) and photos."""
    return MEDIA


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """``../shared/media``: the Pri-matrix clip, other real videos and photos (read-only); skips when absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"needs ../shared/media (not at {SHARED_MEDIA}): footage whose licence keeps it out of "
                    "tests/media (see its LICENSES.md)")
    return SHARED_MEDIA


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
