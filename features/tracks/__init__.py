"""Tracks and counts: the animals of a clip followed through its sampled frames, and how many there are.

:mod:`.tracker` links the detector's boxes into tracks, :mod:`.counting` turns tracks into counts,
:mod:`.frames` decodes and detects a clip's frames, :mod:`.classes` gives tracks the frame head's
classes, and :mod:`.run` is ``jungle count``: all of it over a workspace.
"""
