"""Class -> taxon: what each model class means in Camtrap DP (observation type, scientific name, rank).

jungle ships the mapping of the 24 Pri-matrix classes (``primatrix_taxonomy.csv`` in this
package); ``--taxonomy FILE`` gives another, a CSV with the same columns: ``class``,
``observationType`` (animal | human | blank | vehicle | unknown), ``scientificName``, ``taxonRank``
and optionally ``kingdom``, ``phylum``, ``taxonClass``, ``order``, ``family``,
``vernacularName``. A class without a row is refused (all such classes listed), never guessed.

Camtrap DP's taxonomic coverage allows the ranks kingdom ... subspecies only; a taxon of another
rank (duiker: Cephalophinae, a subfamily) keeps its name there and leaves ``taxonRank`` out.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..userfiles import read_user_text

__all__ = ["Taxon", "Taxonomy", "TaxonomyError", "load_taxonomy", "PRIMATRIX_TAXONOMY"]

PRIMATRIX_TAXONOMY = "primatrix_taxonomy.csv"
OBSERVATION_TYPES = ("animal", "human", "vehicle", "blank", "unknown")
COVERAGE_RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species", "subspecies")
_REQUIRED = ("class", "observationType", "scientificName", "taxonRank")


class TaxonomyError(InputError):
    """The taxonomy file is unreadable or lacks classes the model predicts."""


@dataclass(frozen=True)
class Taxon:
    """One class's meaning in Camtrap DP."""

    label: str
    observation_type: str
    scientific_name: str | None
    rank: str | None
    higher: tuple[tuple[str, str], ...] = ()
    vernacular: str | None = None

    def coverage(self) -> dict:
        """The package's ``taxonomic`` entry of this taxon (only for taxa with a scientific name)."""
        entry = {"scientificName": self.scientific_name}
        if self.rank in COVERAGE_RANKS:
            entry["taxonRank"] = self.rank
        entry.update(dict(self.higher))
        if self.vernacular:
            entry["vernacularNames"] = {"eng": self.vernacular}
        return entry


@dataclass(frozen=True)
class Taxonomy:
    """Taxa by class name, and where they came from."""

    taxa: dict
    source: str

    def check(self, classes: Sequence[str]) -> None:
        """Raise :class:`TaxonomyError` listing every class of ``classes`` without a taxon."""
        missing = [c for c in classes if c not in self.taxa]
        if missing:
            raise TaxonomyError(
                f"{len(missing)} class(es) have no taxonomy in {self.source}: {', '.join(missing)}. "
                "Add a row for each (class,observationType,scientificName,taxonRank) to a CSV and pass "
                "it with --taxonomy FILE.")

    def __getitem__(self, label: str) -> Taxon:
        return self.taxa[label]


def _taxon(row: dict, where: str) -> Taxon:
    kind = (row.get("observationType") or "").strip()
    if kind not in OBSERVATION_TYPES:
        raise TaxonomyError(f'{where}: class "{row["class"]}" has observationType "{kind}"; use one of '
                            f"{', '.join(OBSERVATION_TYPES)}.")
    name = (row.get("scientificName") or "").strip() or None
    if kind == "animal" and not name:
        raise TaxonomyError(f'{where}: class "{row["class"]}" is an animal without a scientificName.')
    higher = tuple((key, (row.get(column) or "").strip()) for key, column in
                   (("kingdom", "kingdom"), ("phylum", "phylum"), ("class", "taxonClass"), ("order", "order"),
                    ("family", "family")) if (row.get(column) or "").strip())
    return Taxon(row["class"].strip(), kind, name, (row.get("taxonRank") or "").strip() or None, higher,
                 (row.get("vernacularName") or "").strip() or None)


def parse_taxonomy(text: str, source: str) -> Taxonomy:
    """Parse taxonomy CSV text (see the module docstring for the columns)."""
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise TaxonomyError(f"{source} lacks the column(s) {', '.join(missing)}; a taxonomy CSV needs "
                            f"{', '.join(_REQUIRED)}.")
    taxa = {}
    for line, row in enumerate(reader, start=2):
        taxon = _taxon(row, f"{source} line {line}")
        if taxon.label in taxa:
            raise TaxonomyError(f'{source} line {line}: class "{taxon.label}" is mapped twice.')
        taxa[taxon.label] = taxon
    return Taxonomy(taxa, source)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy in ``path``, or the shipped Pri-matrix mapping when None."""
    if path is None:
        text = resources.files(__package__).joinpath(PRIMATRIX_TAXONOMY).read_text(encoding="utf-8")
        return parse_taxonomy(text, f"jungle's {PRIMATRIX_TAXONOMY}")
    text = read_user_text(path, "taxonomy file", TaxonomyError)
    return parse_taxonomy(text, str(path))
