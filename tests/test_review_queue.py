"""The review queue's ranking rules and filters, as pure functions of probabilities and labels."""

from __future__ import annotations

import numpy as np
import pytest

from jungle.review.queue import (QueueError, QueueRequest, disagreement_scores, queue_order,
                                 uncertainty_scores)

# Five clips, three classes. Clips 0-2 unlabelled, 3-4 labelled.
P = np.array([
    [0.34, 0.33, 0.33],   # 0: undecided
    [0.90, 0.05, 0.05],   # 1: sure of class 0
    [0.49, 0.485, 0.025], # 2: torn between 0 and 1 (smallest margin), lower entropy than 0
    [0.01, 0.98, 0.01],   # 3: labelled class 0, the model disagrees
    [0.05, 0.05, 0.90],   # 4: labelled class 2, the model agrees
])
Y = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
LABELLED = np.array([False, False, False, True, True])
SITES = ["b", "a", "a", "b", "a"]
TIMES = [5.0, 3.0, np.nan, 1.0, 1.0]
NAMES = ["e.mp4", "d.mp4", "c.mp4", "b.mp4", "a.mp4"]


def order(**request) -> list[int]:
    chosen, _ = queue_order(QueueRequest(**request), P, Y, LABELLED, SITES, TIMES, NAMES)
    return chosen.tolist()


def test_uncertainty_puts_undecided_unlabelled_clips_first():
    assert order() == [0, 2, 1]                                  # entropy, unlabelled clips by default
    assert order(method="margin") == [2, 0, 1]
    assert order(method="margin", labelled="all") == [2, 0, 4, 1, 3]       # ties (1 and 4) by file name
    scores = uncertainty_scores(P)
    assert scores[0] == pytest.approx(np.log(3), abs=1e-3)       # near-uniform: maximal entropy
    assert uncertainty_scores(np.array([[0.5, 0.5, 0.0]]), "margin")[0] == pytest.approx(1.0)


def test_margin_and_entropy_disagree_where_they_should():
    rows = np.array([[0.40, 0.40, 0.20], [0.34, 0.33, 0.33]])
    assert uncertainty_scores(rows, "margin")[0] > uncertainty_scores(rows, "margin")[1]   # a tie beats 0.01
    assert uncertainty_scores(rows, "entropy")[0] < uncertainty_scores(rows, "entropy")[1]


def test_likely_ranks_unlabelled_clips_by_the_chosen_class():
    assert order(order="likely", class_index=1) == [2, 0, 1]
    assert order(order="likely", class_index=1, labelled="all") == [3, 2, 0, 4, 1]


def test_disagreement_finds_labels_the_model_finds_improbable():
    assert order(order="disagreement") == [3, 4]
    scores = disagreement_scores(P, Y)
    assert scores[3] > 1.0 > 0.1 > scores[4]


def test_site_time_and_random():
    assert order(order="site_time") == [4, 1, 2, 3, 0]           # every clip: site a by time (unknown last), then b
    assert order(order="site_time", labelled=False) == [1, 2, 0]
    first, again = order(order="random", seed=3), order(order="random", seed=3)
    assert first == again and sorted(first) == [0, 1, 2, 3, 4]
    assert order(order="random", seed=4) != first


def test_filters_site_class_band():
    assert order(labelled="all", site="a") == [2, 4, 1]
    assert order(labelled="all", class_index=0) == [0, 2, 1, 3]  # predicted class 0, or labelled with it
    assert order(labelled="all", band=(0.4, 0.9)) == [2, 4, 1]   # top probability in [0.4, 0.9]
    assert order(order="likely", class_index=0, band=(0.3, 0.5)) == [2, 0]
    assert order(labelled=True) == [4, 3]                        # uncertainty among labelled clips


def test_requests_that_cannot_be_served_say_why():
    with pytest.raises(QueueError, match=r"'newest'.* uncertainty, likely, disagreement, site_time, random"):
        QueueRequest(order="newest")
    with pytest.raises(QueueError, match="likely order needs a class.* class=NAME"):
        QueueRequest(order="likely")
    with pytest.raises(QueueError, match=r"probability band \(0.8, 0.2\)"):
        QueueRequest(band=(0.8, 0.2))
