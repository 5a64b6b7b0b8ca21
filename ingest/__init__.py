"""Ingest: record a video collection in the workspace.

Modules: :mod:`.discover` (find the files and their identity), :mod:`.probe` (container metadata),
:mod:`.camera` (camera statistics over sampled frames), :mod:`.run` (the parallel, resumable
runner behind ``jungle ingest``), :mod:`.labels` (label import and validation), :mod:`.folds`
(multi-label stratified, optionally site-grouped cross-validation folds).
"""
