"""The real MegadetectorLite weights for the detector and weights tests (fixture ``megadetector_file`` in conftest.py).

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
