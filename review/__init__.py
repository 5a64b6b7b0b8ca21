"""``jungle review``: look at clips, correct labels, and let the model ask for the next ones.

- :mod:`.queue`: the ranking rules (uncertainty, likely class, disagreement, site and time, random).
- :mod:`.labels_store`: label writes with source ``review`` and the ``label_events`` history.
- :mod:`.retrain`: fast re-fits on the cached video-level features.
- :mod:`.previews`: the playable file or a strip of frames.
- :mod:`.session`: one review run's state; :mod:`.server`: the local web app and its JSON API.
"""
