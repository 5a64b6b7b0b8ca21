"""The ImageNet head of a stored embedding and the class map from ImageNet to a taxonomy: the real
lite0 weights and real photographs, the packaged map checked against ImageNet's own names, and
every kind of bad map refused in one line naming the file and the line."""

from __future__ import annotations

import numpy as np
import pytest

from jungle.classes import PRIMATRIX_CLASSES
from jungle.errors import ModelError
from jungle.features.models.imagenet import (ANIMAL_INDICES, DEFAULT_CLASS_MAP, ClassMapError, imagenet_classes,
                                             load_imagenet_head, read_class_map)

from _errors import says


def _photo(media, name, size):
    from PIL import Image

    with Image.open(media / "photos" / name) as image:
        return np.asarray(image.convert("RGB").resize((size, size)))[None]


@pytest.fixture(scope="module")
def lite0():
    from jungle.features.models.encoders import EncoderConfig, load_encoder

    return load_encoder(EncoderConfig(name="lite0"))


def test_imagenet_names_are_timms_thousand_in_classifier_order():
    classes = imagenet_classes()
    assert len(classes) == 1000 and [c.index for c in classes] == list(range(1000))
    assert classes[366].wnid == "n02480855" and classes[366].name == "gorilla"
    assert classes[ANIMAL_INDICES.stop - 1].name == "puffer" and classes[ANIMAL_INDICES.stop].name == "abacus"


def test_the_head_on_a_stored_embedding_is_the_models_own_classifier(media, lite0):
    """Embeddings as featurize stores them (float16 pre-logits) through the head give the
    model's softmax, and a real gorilla photo maps to the Pri-matrix class gorilla."""
    head = load_imagenet_head("lite0", lite0.weights_sha256)
    images = np.concatenate([_photo(media, f"gcompris_erase/{n}.webp", lite0.input_size)
                             for n in ("gorilla", "cheetah", "red_panda")])
    stored = lite0.encode(images)["embedding"].astype(np.float16)
    P = head.probabilities(stored)
    np.testing.assert_allclose(P, lite0.classify(images), atol=2e-3)
    masses = read_class_map(None, PRIMATRIX_CLASSES).masses(P)
    top = [PRIMATRIX_CLASSES[j] for j in masses.argmax(axis=1)]
    assert top[0] == "gorilla" and masses[0, PRIMATRIX_CLASSES.index("gorilla")] > 0.5
    assert top[1] == "leopard"                     # cheetah: a proxy row of the map, said so in its note
    assert top[2] == "other (non-primate)"         # red panda


def test_the_head_refuses_embeddings_of_other_weights():
    with pytest.raises(ModelError) as caught:
        load_imagenet_head("lite0", "0" * 64)
    assert says(str(caught.value), "lite0", "Featurize again")


def test_the_packaged_map_covers_every_pri_matrix_class_but_duiker():
    cmap = read_class_map(None, PRIMATRIX_CLASSES)
    assert cmap.uncovered() == ("duiker",)
    assert "blank" not in cmap.covered and len(cmap.covered) == 22
    assert cmap.source == f"packaged:{DEFAULT_CLASS_MAP.name}" and len(cmap.sha256) == 64
    names = {c.wnid: c for c in imagenet_classes()}
    gorilla = PRIMATRIX_CLASSES.index("gorilla")
    assert np.flatnonzero(cmap.target == gorilla).tolist() == [366]
    elephant = {imagenet_classes()[i].name for i in np.flatnonzero(cmap.target == PRIMATRIX_CLASSES.index("elephant"))}
    assert elephant == {"tusker", "Indian elephant", "African elephant"}
    assert all(names[w].index >= 0 for w in names)  # ids resolved
    # every proxy row says so
    proxies = [i for i, note in cmap.notes.items() if "proxy" in note]
    assert 363 in proxies and 346 in proxies   # armadillo -> pangolin, water buffalo -> forest buffalo


def test_the_packaged_map_leaves_out_classes_a_smaller_taxonomy_lacks():
    cmap = read_class_map(None, ("blank", "chimpanzee", "duiker", "elephant"))
    assert cmap.covered == ("chimpanzee", "elephant") and cmap.uncovered() == ("duiker",)
    assert cmap.left_out == 338 - 4 and cmap.lineage()["left_out"] == cmap.left_out


@pytest.mark.parametrize("rows, facts", [
    ("n02480855,chimp,gorilla", ("line 2", "n02480855", "'gorilla'", "'chimp'")),
    ("n99999999,gorilla,gorilla", ("line 2", "unknown ImageNet id", "n99999999")),
    ("1000,,gorilla", ("line 2", "unknown ImageNet id")),
    (",panther,leopard", ("line 2", "'panther'", "several ImageNet classes", "imagenet_id")),
    (",unicorn,leopard", ("line 2", "'unicorn'", "no ImageNet-1k class name")),
    ("n02480855,gorilla,gorillas", ("line 2", "'gorillas'", "not in the taxonomy")),
    ("n04589890,window screen,blank", ("line 2", "'blank'", "absence of an animal")),
    ("n02480855,gorilla,gorilla\n366,,chimpanzee", ("line 3", "already mapped on line 2")),
])
def test_a_bad_map_is_refused_in_one_line_naming_file_and_line(tmp_path, rows, facts):
    path = tmp_path / "my-map.csv"
    path.write_text("imagenet_id,imagenet_name,class\n" + rows + "\n")
    with pytest.raises(ClassMapError) as caught:
        read_class_map(path, PRIMATRIX_CLASSES)
    assert says(str(caught.value), str(path), *facts, "Fix the file")
    assert "\n" not in str(caught.value)


def test_a_users_map_for_their_own_taxonomy(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("imagenet_name,class,note\nhyena,hyena,\nAfrican elephant,elephant,\n,,\n"
                    "366,gorilla,by index\n".replace("366,gorilla", "gorilla,ape"))
    cmap = read_class_map(path, ("blank", "hyena", "elephant", "ape", "pangolin"))
    assert cmap.covered == ("hyena", "elephant", "ape") and cmap.uncovered() == ("pangolin",)
    assert cmap.notes == {366: "by index"}
    with pytest.raises(ClassMapError) as caught:
        read_class_map(tmp_path / "missing.csv", ("blank", "hyena"))
    assert says(str(caught.value), "missing.csv", "no such file")
    (tmp_path / "bad.csv").write_text("name,label\nhyena,hyena\n")
    with pytest.raises(ClassMapError) as caught:
        read_class_map(tmp_path / "bad.csv", ("blank", "hyena"))
    assert says(str(caught.value), "bad.csv", "imagenet_id or imagenet_name")
