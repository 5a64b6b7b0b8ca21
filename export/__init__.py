"""Exports of a workspace's results in the formats ecologists load: Camtrap DP 1.0.2, the
MegaDetector batch-output JSON, and the wide per-video CSV.

Every export reads the workspace (videos, human labels, a saved model's predictions, detections),
writes its files with sorted rows and no wall-clock times (Camtrap DP's ``created`` excepted, and
it can be pinned), and writes the typed configuration that made it next to the output, with the
code version. See :mod:`jungle.export.camtrap_dp`, :mod:`jungle.export.megadetector` and
:mod:`jungle.export.table`.
"""
