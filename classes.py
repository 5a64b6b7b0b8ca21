"""The class list: the 24 Pri-matrix classes in the competition's column order (configurable)."""

from __future__ import annotations

__all__ = ["PRIMATRIX_CLASSES"]

PRIMATRIX_CLASSES: tuple[str, ...] = (
    "bird", "blank", "cattle", "chimpanzee", "elephant", "forest buffalo", "gorilla",
    "hippopotamus", "human", "hyena", "large ungulate", "leopard", "lion", "other (non-primate)",
    "other (primate)", "pangolin", "porcupine", "reptile", "rodent", "small antelope", "small cat",
    "wild dog", "duiker", "hog",
)
