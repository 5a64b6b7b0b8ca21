"""ImageNet's classes, an encoder's ImageNet head, and class maps from ImageNet classes to a taxonomy.

The packaged encoders (``lite0``, ``lite1``, ``lite2``) are ImageNet classifiers: a featurize run
stores each frame's (and crop's) pooled pre-logits features (``forward_head(pre_logits=True)``), and
the model's own classifier turns them into the probabilities of ImageNet-1k's 1,000 classes. So
the ImageNet head needs no new pass over the videos: :func:`load_imagenet_head` takes the linear
classifier (weight and bias) of the encoder that made a feature set, checked against the weights
the set records, and :meth:`ImageNetHead.probabilities` applies it to stored embeddings.

ImageNet knows gorillas, chimpanzees, elephants and hyenas but not duikers or forest buffalo, and
its classes are not a camera-trap taxonomy. A **class map** (:class:`ClassMap`) says which
ImageNet class stands for which class of the workspace: a CSV with the columns

- ``imagenet_id``: the WordNet id (``n02480855``) or the index (0-999) of an ImageNet-1k class;
- ``imagenet_name``: one of that class's names (``gorilla``); with no id, the name alone must name
  exactly one class;
- ``class``: the taxonomy class it maps to (never ``blank``: blank is the absence of an animal);
- ``note`` (optional): why, e.g. that a row is a proxy (water buffalo for forest buffalo).

Each ImageNet class maps to at most one class; unlisted ImageNet classes map to nothing.
Taxonomy classes with no row are *uncovered*: ImageNet has nothing for them. The map shipped
with jungle (:data:`DEFAULT_CLASS_MAP`) maps 338 ImageNet classes to the 24 Pri-matrix classes;
a map for another taxonomy is read the same way (:func:`read_class_map`), and every problem in
it (an unknown ImageNet id or name, a name that does not fit its id, an unknown class, a class
mapped twice) is refused in one line.

ImageNet names and ids come from timm's own copy of the ImageNet-1k synsets (offline).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError, ModelError
from ...hashing import text_sha256
from ...userfiles import read_user_text
from .encoders import EncoderConfig, load_encoder

__all__ = ["IMAGENET_CLASSES", "ANIMAL_INDICES", "DEFAULT_CLASS_MAP", "ImageNetClass", "imagenet_classes",
           "ImageNetHead", "load_imagenet_head", "ClassMapError", "ClassMap", "read_class_map"]

IMAGENET_CLASSES = 1000
ANIMAL_INDICES = range(0, 398)
"""ImageNet-1k's animals: in its WordNet order, classes 0 (tench) to 397 (puffer) are animals,
398 (abacus) onwards objects, scenes, food and plants."""

DEFAULT_CLASS_MAP = Path(__file__).with_name("imagenet_primatrix.csv")
"""The packaged map from ImageNet-1k to the 24 Pri-matrix classes (a file in the package)."""

_WNID = re.compile(r"^n\d{8}$")
_SHOWN = 3  # problems named in a refusal


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class: its index in the classifier's output, WordNet id and names."""

    index: int
    wnid: str
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1,000 ImageNet-1k classes in classifier order (timm's offline synset list)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(ImageNetClass(i, info.index_to_label_name(i),
                               tuple(n.strip() for n in info.index_to_description(i).split(",") if n.strip()))
                 for i in range(info.num_classes()))


@dataclass(frozen=True)
class ImageNetHead:
    """An encoder's ImageNet classifier: logits = embedding @ weight.T + bias.

    Attributes:
        weight: (1000, dims) float32.
        bias: (1000,) float32.
        encoder: the encoder's name (``lite0``) and weights_sha256: the weights it was taken from.
    """

    weight: np.ndarray
    bias: np.ndarray
    encoder: str
    weights_sha256: str

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax ImageNet probabilities (..., 1000) of stored embeddings (..., dims); rows of
        non-finite embeddings (empty slots) come out as NaN."""
        E = np.asarray(embeddings, np.float32)
        logits = E @ self.weight.T + self.bias
        logits -= np.max(logits, axis=-1, keepdims=True)
        P = np.exp(logits)
        P /= P.sum(axis=-1, keepdims=True)
        return P


def load_imagenet_head(encoder: str, weights_sha256: str | None = None, weights: str | None = None) -> ImageNetHead:
    """The ImageNet classifier of ``encoder`` (an alias such as ``lite0`` with its packaged weights).

    Args:
        encoder: the encoder's name as a feature set records it.
        weights_sha256: the weights the feature set was made with; the head must come from them.
        weights: the weights file the set records, used when it is still there (else the encoder's
            own: a packaged alias's, or the hub's).

    Raises:
        ModelError: the encoder cannot be loaded, has no 1,000-class ImageNet head, or its weights
            differ from the set's (the embeddings would not fit this head).
    """
    file = weights if weights and Path(weights).is_file() else None
    loaded = load_encoder(EncoderConfig(name=encoder, weights=file))
    if weights_sha256 is not None and loaded.weights_sha256 != weights_sha256:
        raise ModelError(f"the {encoder} weights here ({loaded.weights_sha256[:12]}) are not the ones its feature set "
                         f"was made with ({weights_sha256[:12]}), so their ImageNet head does not fit the stored "
                         "embeddings. Featurize again with this installation's weights.")
    classifier = loaded.model.get_classifier()
    weight = getattr(classifier, "weight", None)
    if weight is None or tuple(weight.shape) != (IMAGENET_CLASSES, loaded.dims):
        raise ModelError(f"encoder {encoder} has no ImageNet-1k classifier over its {loaded.dims} embedding "
                         "dimensions, so it cannot give zero-shot class scores. Use a packaged encoder "
                         "(lite0, lite1, lite2).")
    bias = classifier.bias.detach().float().numpy() if classifier.bias is not None else np.zeros(IMAGENET_CLASSES)
    return ImageNetHead(weight.detach().float().numpy().copy(), np.asarray(bias, np.float32).copy(), encoder,
                        loaded.weights_sha256)


class ClassMapError(InputError):
    """A class map file is not usable: the message names the file and its problems."""


@dataclass(frozen=True)
class ClassMap:
    """Which ImageNet class stands for which taxonomy class.

    Attributes:
        source: where the map came from (a path, or ``packaged:<file name>``).
        sha256: the SHA-256 of its text (lineage: two maps with the same text are the same map).
        classes: the taxonomy's classes, in order (the workspace's).
        target: (1000,) int, for each ImageNet class the index of its class in ``classes``, -1 for none.
        notes: per mapped ImageNet index, the row's note (empty when none).
        left_out: rows of the packaged map for classes this taxonomy does not have (left out).
    """

    source: str
    sha256: str
    classes: tuple[str, ...]
    target: np.ndarray
    notes: dict[int, str]
    left_out: int = 0

    @property
    def covered(self) -> tuple[str, ...]:
        """The classes some ImageNet class maps to, in taxonomy order."""
        hit = set(self.target[self.target >= 0].tolist())
        return tuple(c for i, c in enumerate(self.classes) if i in hit)

    def uncovered(self, blank: str = "blank") -> tuple[str, ...]:
        """The classes no ImageNet class maps to (``blank`` aside: it is no animal)."""
        covered = set(self.covered)
        return tuple(c for c in self.classes if c not in covered and c != blank)

    def indicator(self) -> np.ndarray:
        """(1000, classes) 0/1: ImageNet class i counts for class c."""
        out = np.zeros((IMAGENET_CLASSES, len(self.classes)), np.float32)
        mapped = np.flatnonzero(self.target >= 0)
        out[mapped, self.target[mapped]] = 1.0
        return out

    def masses(self, P: np.ndarray) -> np.ndarray:
        """(..., classes) each class's share of ImageNet probabilities ``P`` (..., 1000): the sum over
        the ImageNet classes mapped to it."""
        return np.asarray(P, np.float32) @ self.indicator()

    def lineage(self) -> dict:
        """What made the map: its source, digest, classes and how many ImageNet classes it maps."""
        return {"source": self.source, "sha256": self.sha256, "classes": list(self.classes),
                "mapped": int((self.target >= 0).sum()), "left_out": self.left_out,
                "uncovered": list(self.uncovered())}


def _resolve(row: dict, by_wnid: dict, by_name: dict, line: int, problems: list[str]) -> int | None:
    """The ImageNet index a row names (None, with a problem added, when it names none or a wrong one)."""
    raw_id = (row.get("imagenet_id") or "").strip()
    name = (row.get("imagenet_name") or "").strip()
    index = None
    if raw_id:
        if _WNID.match(raw_id) and raw_id in by_wnid:
            index = by_wnid[raw_id]
        elif raw_id.isdigit() and int(raw_id) < IMAGENET_CLASSES:
            index = int(raw_id)
        else:
            problems.append(f"line {line}: unknown ImageNet id {raw_id!r} (give a WordNet id such as n02480855 "
                            "or an index 0-999)")
            return None
    if name:
        matches = by_name.get(name.lower(), [])
        if index is None:
            if len(matches) != 1:
                what = "names several ImageNet classes" if matches else "is no ImageNet-1k class name"
                problems.append(f"line {line}: {name!r} {what}: give its imagenet_id")
                return None
            index = matches[0]
        elif index not in matches:
            actual = imagenet_classes()[index]
            problems.append(f"line {line}: ImageNet class {actual.wnid} is {actual.name!r}, not {name!r}")
            return None
    if index is None:
        problems.append(f"line {line}: neither imagenet_id nor imagenet_name")
    return index


def parse_class_map(text: str, source: str, classes: Sequence[str], blank: str = "blank",
                    strict: bool = True) -> ClassMap:
    """Validate the text of a class map against ImageNet-1k and ``classes`` (see :func:`read_class_map`);
    with ``strict`` False, rows for classes outside ``classes`` are left out (counted) instead of refused."""
    imagenet = imagenet_classes()
    by_wnid = {c.wnid: c.index for c in imagenet}
    by_name: dict[str, list[int]] = {}
    for c in imagenet:
        for n in dict.fromkeys(n.lower() for n in c.names):
            by_name.setdefault(n, []).append(c.index)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "class" not in header or not {"imagenet_id", "imagenet_name"} & set(header):
        raise ClassMapError(f"class map {source} needs a header with class and imagenet_id or imagenet_name "
                            f"(found {', '.join(header) or 'nothing'}): see {DEFAULT_CLASS_MAP.name} in the package.")
    reader.fieldnames = header
    known = {c: i for i, c in enumerate(classes)}
    target = np.full(IMAGENET_CLASSES, -1, np.int32)
    where: dict[int, int] = {}
    notes: dict[int, str] = {}
    problems: list[str] = []
    left_out = 0
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        cls = (row.get("class") or "").strip()
        index = _resolve(row, by_wnid, by_name, line, problems)
        if cls == blank:
            problems.append(f"line {line}: maps to {blank!r}, which no ImageNet class can show (blank is the "
                            "absence of an animal)")
            continue
        if cls not in known and not strict and cls:
            left_out += 1
            continue
        if cls not in known:
            problems.append(f"line {line}: class {cls!r} is not in the taxonomy ({len(classes)} classes: "
                            f"{', '.join(list(classes)[:4])}, ...)")
            continue
        if index is None:
            continue
        if index in where:
            problems.append(f"line {line}: ImageNet class {imagenet[index].wnid} ({imagenet[index].name}) is "
                            f"already mapped on line {where[index]}")
            continue
        where[index] = line
        target[index] = known[cls]
        if (row.get("note") or "").strip():
            notes[index] = row["note"].strip()
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise ClassMapError(f"class map {source} has {len(problems)} problem(s): {'; '.join(problems[:_SHOWN])}"
                            f"{more}. Fix the file; nothing was predicted.")
    if not where:
        raise ClassMapError(f"class map {source} maps no ImageNet class: add rows (imagenet_id,imagenet_name,class).")
    return ClassMap(source, text_sha256(text), tuple(classes), target, notes, left_out)


def read_class_map(path: str | Path | None, classes: Sequence[str], blank: str = "blank") -> ClassMap:
    """Read and validate a class map for the taxonomy ``classes``.

    Args:
        path: a CSV a user gives, or None for the packaged Pri-matrix map (:data:`DEFAULT_CLASS_MAP`),
            whose rows for classes the taxonomy lacks are left out (a subset of the Pri-matrix classes
            works with it; another taxonomy needs its own map).
        classes: the workspace's classes, in order.
        blank: the class that means "no animal" (no ImageNet class may map to it).

    Raises:
        ClassMapError: the file cannot be read, or has problems (each named, in one line).
    """
    if path is None:
        return parse_class_map(DEFAULT_CLASS_MAP.read_text(encoding="utf-8"), f"packaged:{DEFAULT_CLASS_MAP.name}",
                               classes, blank, strict=False)
    return parse_class_map(read_user_text(path, "class map", ClassMapError, limit=4 * 2**20), str(path), classes,
                           blank)
