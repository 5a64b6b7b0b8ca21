"""Checks of what an export is about to write, before it is written.

A Camtrap DP package is checked against the standard's own table schemas (copies of the 1.0.2
``deployments``, ``media`` and ``observations`` schemas ship in ``export/standards/``, MIT): each
CSV's header, every cell's type (string, number, integer, boolean, datetime in the schema's
format), its constraints (required, unique, minimum, maximum, enum, pattern; a cell spelled as one
of the schema's ``missingValues`` is missing), primary and foreign keys; and the descriptor's
required properties, its resources and profile, its coverage and the ``--metadata`` keys merged
into it. This is the part of the Camtrap DP profile that jungle's own data can break; the tests
validate the same packages with frictionless as well (too heavy to run on every export).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import date, datetime
from functools import lru_cache
from importlib import resources

from ..errors import InputError

__all__ = ["InvalidExport", "check_cell", "check_probabilities", "check_table", "check_package", "table_schema"]

_LISTED = 3


class InvalidExport(InputError):
    """What the export would write breaks the format's rules (named: file, row, column, rule)."""


@lru_cache(maxsize=None)
def table_schema(name: str) -> dict:
    """The Camtrap DP 1.0.2 table schema of ``name`` (deployments, media or observations)."""
    folder = resources.files(__package__).joinpath("standards", "camtrap-dp-1.0.2")
    return json.loads(folder.joinpath(f"{name}-table-schema.json").read_text(encoding="utf-8"))


def _datetime(text: str, fmt: str | None) -> None:
    if fmt:
        datetime.strptime(text, fmt)
    else:
        datetime.fromisoformat(text.replace("Z", "+00:00"))


def _value(text: str, field: dict):
    """The cell ``text`` as the field's type; ValueError when it is not one."""
    kind = field.get("type", "string")
    if kind == "number":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise ValueError("not a whole number")
        return int(text)
    if kind == "boolean":
        if text not in ("true", "false", "True", "False", "TRUE", "FALSE", "1", "0"):
            raise ValueError("not true or false")
        return text
    if kind == "datetime":
        _datetime(text, field.get("format"))
    return text


def check_cell(text: str, field: dict) -> str | None:
    """What is wrong with the present cell ``text`` of the schema field ``field``, or None."""
    try:
        value = _value(text, field)
    except ValueError as exc:
        return f"{text[:40]!r} is not a {field.get('type')} ({exc})"
    constraints = field.get("constraints", {})
    if "minimum" in constraints and value < constraints["minimum"]:
        return f"{text[:40]} is below the minimum {constraints['minimum']}"
    if "maximum" in constraints and value > constraints["maximum"]:
        return f"{text[:40]} is above the maximum {constraints['maximum']}"
    if "enum" in constraints and value not in constraints["enum"]:
        return f"{text[:40]!r} is not one of {', '.join(constraints['enum'])}"
    if "pattern" in constraints and not re.fullmatch(constraints["pattern"], text):
        return f"{text[:40]!r} does not match the pattern {constraints['pattern']}"
    return None


def check_table(name: str, text: str) -> dict[str, set]:
    """Check the CSV ``text`` of resource ``name`` against its table schema; return the values of
    its key columns (for foreign keys).

    Raises:
        InvalidExport: naming the file, the first rows and columns that break a rule, and the rule.
    """
    schema = table_schema(name)
    fields = schema["fields"]
    missing = set(schema.get("missingValues", [""]))
    rows = list(csv.reader(io.StringIO(text)))
    header = [f["name"] for f in fields]
    if not rows or rows[0] != header:
        raise InvalidExport(f"{name}.csv: the header is not the Camtrap DP 1.0.2 columns of {name}")
    problems: list[str] = []
    seen: dict[str, set] = {f["name"]: set() for f in fields if f.get("constraints", {}).get("unique")}
    keys: dict[str, set] = {f["name"]: set() for f in fields}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(fields):
            problems.append(f"line {line} has {len(row)} cells, not {len(fields)}")
            continue
        for field, text in zip(fields, row):
            column = field["name"]
            if text in missing:
                if field.get("constraints", {}).get("required"):
                    shown = f" ({text!r} is read as missing)" if text else ""
                    problems.append(f"line {line}, {column}: a value is required{shown}")
                continue
            problem = check_cell(text, field)
            if problem:
                problems.append(f"line {line}, {column}: {problem}")
            if column in seen:
                if text in seen[column]:
                    problems.append(f"line {line}, {column}: {text[:40]!r} is not unique")
                seen[column].add(text)
            keys[column].add(text)
        if len(problems) > _LISTED:
            break
    if problems:
        more = " (and more)" if len(problems) > _LISTED else ""
        raise InvalidExport(f"{name}.csv would break Camtrap DP 1.0.2: {'; '.join(problems[:_LISTED])}{more}.")
    return keys


_PACKAGE_REQUIRED = ("resources", "profile", "created", "contributors", "project", "spatial", "temporal", "taxonomic")
_ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
_PROJECT = {"samplingDesign": ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted",
                               "opportunistic"),
            "captureMethod": ("activityDetection", "timeLapse"), "observationLevel": ("media", "event")}


def _check_descriptor(package: dict, resources_expected: list, profile: str) -> list[str]:
    problems = [f"it has no {key}" for key in _PACKAGE_REQUIRED if key not in package]
    if package.get("resources") != resources_expected or package.get("profile") != profile:
        problems.append("its resources or profile are not the ones jungle writes")
    contributors = package.get("contributors")
    if not isinstance(contributors, list) or not contributors or not all(
            isinstance(c, dict) and isinstance(c.get("title"), str) and c.get("role", "contributor") in _ROLES
            for c in contributors):
        problems.append(f"contributors must be a list of objects with a title and a role ({', '.join(_ROLES)})")
    else:
        problems += _people_problems("contributors", contributors)
    project = package.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("title"), str) or \
            not isinstance(project.get("individualAnimals"), bool) or \
            project.get("samplingDesign") not in _PROJECT["samplingDesign"] or \
            not all(isinstance(project.get(k), list) and project[k] and set(project[k]) <= set(_PROJECT[k])
                    for k in ("captureMethod", "observationLevel")):
        problems.append("project needs title, samplingDesign, captureMethod, individualAnimals and observationLevel "
                        "with Camtrap DP's values")
    temporal = package.get("temporal")
    try:
        start, end = date.fromisoformat(temporal["start"]), date.fromisoformat(temporal["end"])
        if end < start:
            problems.append("temporal ends before it starts")
    except (TypeError, KeyError, ValueError):
        problems.append("temporal needs start and end dates (YYYY-MM-DD)")
    if not isinstance(package.get("taxonomic"), list) or not all(
            isinstance(t, dict) and isinstance(t.get("scientificName"), str) for t in package["taxonomic"]):
        problems.append("taxonomic must list objects with a scientificName")
    problems += _metadata_problems(package)
    return problems


_LICENSE_NAME = re.compile(r"[-a-zA-Z0-9._]+")
_PATH = re.compile(r"(?![./~])(?!.*\.\.).*")  # Data Package: a URL or a relative POSIX path
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def is_license_name(name) -> bool:
    """Whether ``name`` is a licence identifier as Data Package requires (``CC-BY-4.0``)."""
    return isinstance(name, str) and _LICENSE_NAME.fullmatch(name) is not None


def _is_path(path) -> bool:
    return isinstance(path, str) and _PATH.fullmatch(path) is not None


def _people_problems(key: str, people: list) -> list[str]:
    """Data Package's rules of a contributor or source besides its title: email, path, organization."""
    problems = []
    for person in people:
        email = person.get("email")
        if email is not None and not (isinstance(email, str) and len(email) <= 254 and _EMAIL.fullmatch(email)
                                      and len(email.split("@")[0]) <= 64):
            problems.append(f"{key}: {str(email)[:60]!r} is not an email address")
        if "path" in person and not _is_path(person["path"]):
            problems.append(f"{key}: path {str(person['path'])[:60]!r} is not a URL or a relative path")
        if "organization" in person and not isinstance(person["organization"], str):
            problems.append(f"{key}: organization must be text")
    return problems


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _metadata_problems(package: dict) -> list[str]:
    """The Data Package and Camtrap DP rules of the properties a --metadata file may set."""
    problems = []
    licenses = package.get("licenses", [{"name": "x", "scope": "data"}, {"name": "x", "scope": "media"}])
    if not isinstance(licenses, list) or len(licenses) < 2 or not all(
            isinstance(x, dict) and x.get("scope") in ("data", "media") and (isinstance(x.get("name"), str)
                                                                              or isinstance(x.get("path"), str))
            for x in licenses) or {x["scope"] for x in licenses} != {"data", "media"}:
        problems.append("licenses must list a license (name or path) of scope data and one of scope media")
    else:
        for x in licenses:
            if "name" in x and not is_license_name(x["name"]):
                problems.append(f"license name {str(x['name'])[:60]!r} is not a licence identifier (letters, digits "
                                "and - . _, e.g. CC-BY-4.0)")
            if "path" in x and not _is_path(x["path"]):
                problems.append(f"license path {str(x['path'])[:60]!r} is not a URL or a relative path")
    for key in ("title", "description", "version", "homepage", "image", "bibliographicCitation", "id"):
        if key in package and not isinstance(package[key], str):
            problems.append(f"{key} must be text")
    if not isinstance(package.get("name"), str) or not re.fullmatch(r"[-a-z0-9._/]+", package["name"]):
        problems.append("name must be lower-case letters, digits and . _ - /")
    if "keywords" in package and (not _texts(package["keywords"]) or not package["keywords"]):
        problems.append("keywords must be a non-empty list of texts")
    if "references" in package and not _texts(package["references"]):
        problems.append("references must be a list of texts")
    if "coordinatePrecision" in package and (isinstance(package["coordinatePrecision"], bool) or not isinstance(
            package["coordinatePrecision"], (int, float))):
        problems.append("coordinatePrecision must be a number")
    sources = package.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, dict) and isinstance(x.get("title"), str)
                                                for x in sources):
        problems.append("sources must be a list of objects with a title")
    else:
        problems += _people_problems("sources", sources)
    related = package.get("relatedIdentifiers", [])
    if not isinstance(related, list) or not all(
            isinstance(x, dict) and {"relationType", "relatedIdentifier", "relatedIdentifierType"} <= x.keys()
            for x in related):
        problems.append("relatedIdentifiers must be objects with relationType, relatedIdentifier and "
                        "relatedIdentifierType")
    return problems


def check_package(texts: dict[str, str], package: dict, resources_expected: list, profile: str) -> None:
    """Check a whole package before it is written: each table (:func:`check_table`), the foreign
    keys between them, and the descriptor ``package``.

    Args:
        texts: file name -> CSV text of deployments.csv, media.csv and observations.csv.
        package: the descriptor (datapackage.json's content).
        resources_expected: the resources jungle writes.
        profile: the Camtrap DP profile URL.

    Raises:
        InvalidExport: the first problems, each naming the file (and row and column) and the rule.
    """
    keys = {name: check_table(name, texts[f"{name}.csv"]) for name in ("deployments", "media", "observations")}
    for name, column, parent in (("media", "deploymentID", "deployments"),
                                 ("observations", "deploymentID", "deployments"), ("observations", "mediaID", "media")):
        dangling = sorted(keys[name][column] - keys[parent][column])
        if dangling:
            raise InvalidExport(f"{name}.csv would break Camtrap DP 1.0.2: {column} {', '.join(dangling[:_LISTED])} "
                                f"is not in {parent}.csv.")
    problems = _check_descriptor(package, resources_expected, profile)
    if problems:
        raise InvalidExport(f"datapackage.json would break Camtrap DP 1.0.2: {'; '.join(problems[:_LISTED])}. "
                            "Check the --metadata file and the --contributor options.")


def check_probabilities(P, where: str) -> None:
    """Every probability of ``P`` is a number in [0, 1].

    Raises:
        InvalidExport: naming how many are not, and what to do.
    """
    import numpy as np

    P = np.asarray(P, dtype=np.float64)
    bad = int((~np.isfinite(P) | (P < 0) | (P > 1)).sum())
    if bad:
        raise InvalidExport(f"{where} would hold {bad} probabilities that are not numbers from 0 to 1: the "
                            "predictions table holds damaged rows. Run `jungle predict` again, then export.")
