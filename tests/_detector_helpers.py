"""Fixtures shared by tests/test_detector.py and tests/test_weights.py: the real MegadetectorLite weights.

The weights live in the machine's weights cache (``$JUNGLE_WEIGHTS_DIR`` or
``~/.cache/jungle/weights``). When they are not there yet, the session fetches them once with pip
(the zamba 2.7.2 wheel, 40 MB); when pip cannot reach PyPI the tests that need them are skipped
with the reason.
"""

from __future__ import annotations

import pytest

WEIGHTS_NAME = "megadetector-lite"


def fetch_or_skip():
    """The cached, verified weights file, fetching it with pip if needed; skip when impossible."""
    from jungle.features.models.weights import WeightsError, fetch_weights

    try:
        return fetch_weights(WEIGHTS_NAME).path
    except WeightsError as exc:
        pytest.skip(f"MegadetectorLite weights are not cached and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def megadetector_file():
    """Path of the verified ``yolox_tiny_640_20220528.pth``."""
    return fetch_or_skip()
