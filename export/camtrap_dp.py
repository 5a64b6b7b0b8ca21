"""``jungle export camtrap-dp OUT_DIR``: a Camera Trap Data Package (Camtrap DP 1.0.2) of video results.

The package holds ``datapackage.json`` (the profile and table schemas referenced by their official
1.0.2 URLs; coverage computed from the data), ``deployments.csv`` (one deployment per site),
``media.csv`` (one row per video, ``mediaID`` = ``video_id``) and ``observations.csv``:

* media level: per video the classes whose probability passes the class's threshold
  (``classificationMethod`` machine, with the probability and the model) — or, for a video with
  human labels, its positive classes (``classificationMethod`` human), which win over the machine's;
  a video where no class passes gets one ``unknown`` observation;
* event level: the same over each independent event (:mod:`jungle.export.events`), the event's
  probability being the max (or noisy-OR) of its clips' (a labelled clip counts as 0/1); an event
  is human-classified when every clip in it is.

Where ``jungle count`` has counted the clips, observations carry ``count`` (media and event level) and
media-level ones the box around the counted animals (:mod:`jungle.export.counts`).

Coordinates cannot be guessed: they come from ``--deployments FILE`` (a CSV with ``site`` plus
Camtrap DP deployment columns); sites without them are refused, listed, unless they are asked to be
left out. The configuration, thresholds and model go to ``jungle-export.json`` in the package.

Who classified: a machine observation names the model (``jungle VERSION model ID (recipe)``); a
human one names the person: the ``--reviewer`` of the clip's latest review change, else
``--classified-by`` (who labelled the imported label file), else nobody (said in a note). What is
not given is said in the output: the ``samplingDesign`` default, missing licences, the folder that
``filePath`` is relative to (by default the one holding the collection: the common folder of the
ingested folders, so every path starts with the collection's own folder).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from ..config import JungleConfig
from ..errors import InputError
from ..store.capture_times import UNTRUSTED
from ..store.events import group_events
from ..store.registry import code_version
from ..userfiles import read_user_text
from .counts import clip_counts, event_counts, with_counts
from .events import EventRule, event_probabilities
from .files import csv_text, formula_cells, formula_note, json_text, record_text, replace_folder
from .source import ExportData, load_export_data, load_oof
from .taxonomy import Taxonomy, load_taxonomy
from .thresholds import ThresholdConfig, passes, resolve_thresholds
from .validate import check_cell, check_package, is_license_name, table_schema

__all__ = ["CamtrapConfig", "CamtrapResult", "export_camtrap_dp", "MissingCoordinates", "DeploymentsFileError",
           "PROFILE_URL", "SCHEMA_URLS", "DEPLOYMENT_FIELDS", "MEDIA_FIELDS", "OBSERVATION_FIELDS", "RECORD"]

BASE_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/"
PROFILE_URL = BASE_URL + "camtrap-dp-profile.json"
SCHEMA_URLS = {name: f"{BASE_URL}{name}-table-schema.json" for name in ("deployments", "media", "observations")}
RECORD = "jungle-export.json"

DEPLOYMENT_FIELDS = (
    "deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
    "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay", "cameraHeight",
    "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance", "timestampIssues", "baitUse", "featureType",
    "habitat", "deploymentGroups", "deploymentTags", "deploymentComments")
MEDIA_FIELDS = ("mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
                "fileMediatype", "exifData", "favorite", "mediaComments")
OBSERVATION_FIELDS = (
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
    "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior", "individualID",
    "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth",
    "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp", "classificationProbability",
    "observationTags", "observationComments")

_MEDIATYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".avi": "video/x-msvideo", ".mov": "video/quicktime",
               ".asf": "video/x-ms-asf", ".wmv": "video/x-ms-wmv", ".mkv": "video/x-matroska",
               ".webm": "video/webm", ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".3gp": "video/3gpp"}
ROOT_SITE = "root"
"""The deployment of videos that sat directly in the ingested folder (no site folder)."""


class MissingCoordinates(InputError):
    """Sites without latitude/longitude."""


class DeploymentsFileError(InputError):
    """The --deployments CSV cannot be used."""


class CamtrapConfig(JungleConfig):
    """What goes into the package.

    Attributes:
        model: saved model (``latest``, an id or a folder).
        thresholds: per-class threshold rule.
        event_gap_s: largest gap (s) between a clip's end and the next clip's start within an event.
        event_rule: event probability from its clips: ``max`` or ``noisy-or``.
        deployments: CSV with ``site`` and Camtrap DP deployment columns (latitude, longitude, ...).
        drop_sites_without_coordinates: leave sites without coordinates (and their media) out
            instead of refusing.
        only_predicted: leave out videos with neither predictions nor labels instead of refusing.
        taxonomy: taxonomy CSV (None: jungle's Pri-matrix mapping).
        media_base: prefix of each ``filePath`` before the video's path relative to the ingested
            folder (a URL or a relative folder; None: the relative path alone).
        file_public: whether ``filePath`` is publicly reachable.
        capture_method: how the cameras were triggered.
        created: the package's ``created`` (ISO 8601; None: now, or ``$SOURCE_DATE_EPOCH``).
        title: package and (default) project title.
        contributors: ``Name`` or ``Name <email>``, the first as contact.
        metadata: JSON file whose keys are merged into ``datapackage.json`` (``project`` key by key).
        sampling_design: the project's Camtrap DP ``samplingDesign``.
        classified_by: the person who made the human labels no review change names.
        data_license, media_license: licence names (e.g. ``CC-BY-4.0``) of the data and the media.
        media_root: the folder ``filePath`` is relative to (None: the folder holding the collection).
    """

    model: str = "current"
    thresholds: ThresholdConfig = ThresholdConfig()
    event_gap_s: float = Field(60.0, ge=0.0, le=366 * 86400.0)
    event_rule: EventRule = "max"
    deployments: str | None = None
    drop_sites_without_coordinates: bool = False
    only_predicted: bool = False
    taxonomy: str | None = None
    media_base: str | None = None
    file_public: bool = False
    capture_method: Literal["activityDetection", "timeLapse"] = "activityDetection"
    created: str | None = None
    title: str = "Camera-trap video observations (jungle)"
    contributors: tuple[str, ...] = ()
    metadata: str | None = None
    sampling_design: Literal["simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted",
                             "opportunistic"] = "opportunistic"
    classified_by: str | None = Field(None, min_length=1, max_length=200)
    data_license: str | None = Field(None, min_length=1, max_length=200)
    media_license: str | None = Field(None, min_length=1, max_length=200)
    media_root: str | None = None

    @field_validator("data_license", "media_license")
    @classmethod
    def _license_name(cls, value):
        if value is not None and not is_license_name(value):
            raise ValueError(f"{value[:60]!r} is not a licence identifier: letters, digits and - . _ only (an SPDX "
                             "id such as CC-BY-4.0 or CC0-1.0; a licence given by URL goes in --metadata)")
        return value

    @field_validator("contributors")
    @classmethod
    def _named(cls, value):
        for text in value:
            match = _CONTRIBUTOR.fullmatch(text)
            if not (match.group(1) if match else text).strip():
                raise ValueError(f"--contributor {text[:60]!r} has no name: give \"Name <email>\" or \"Name\"")
        return value

    @model_validator(mode="after")
    def _both_licenses(self):
        if (self.data_license is None) != (self.media_license is None):
            raise ValueError("Camtrap DP needs a licence for the data and one for the media: give both "
                             "--data-license and --media-license (they may be the same, e.g. CC-BY-4.0)")
        return self


class CamtrapResult(BaseModel):
    """What was written."""

    out_dir: str
    model_id: str
    deployments: int
    media: int
    observations: int
    events: int
    dropped_sites: tuple[str, ...] = ()
    skipped_videos: int = 0
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def rows(self) -> tuple[list[str], list[tuple]]:
        values = self.model_dump(exclude={"notes", "warnings"})
        return list(values), [tuple(", ".join(v) if isinstance(v, tuple) else v for v in values.values())]


# ----------------------------------------------------------------------------------------------- times
def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second (naive times are UTC, as ingest stores them)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def _parse_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DeploymentsFileError(f"{where}: {text!r} is not an ISO 8601 date-time (e.g. 2024-03-01T08:00:00Z).") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def created_time(pinned: str | None) -> str:
    """``created``: the pinned value, else ``$SOURCE_DATE_EPOCH``, else now (UTC)."""
    import os

    if pinned:
        return iso(_parse_time(pinned, "--created"))
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return iso(moment)


# ----------------------------------------------------------------------------------------------- deployments
def site_of(video: dict) -> str:
    return video["site"] or ROOT_SITE


def read_deployments_file(path: str | None) -> dict[str, dict]:
    """site -> Camtrap DP deployment fields from the --deployments CSV (empty cells dropped).

    Every given cell is checked against the Camtrap DP deployments schema (latitude in -90..90,
    longitude in -180..180, coordinateUncertainty a whole number from 1, dates, enums, ...) and a
    deployment may not end before it starts, so a bad value is named here, by line and column.

    Raises:
        DeploymentsFileError: the file cannot be read, has unknown columns or cells beyond its
            header, lists a site twice, or a value breaks the schema.
    """
    if path is None:
        return {}
    text = read_user_text(path, "deployments file", DeploymentsFileError)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = list(reader)
    except csv.Error as exc:
        raise DeploymentsFileError(f"cannot read the deployments file {path} as CSV: {exc}.") from None
    reader.fieldnames = columns
    unknown = [c for c in columns if c != "site" and c not in DEPLOYMENT_FIELDS]
    if "site" not in columns or unknown:
        raise DeploymentsFileError(
            f"{path}: " + ("it has no 'site' column" if "site" not in columns else
                           f"unknown column(s) {', '.join(unknown)}") +
            f". Use 'site' and Camtrap DP deployment columns ({', '.join(DEPLOYMENT_FIELDS[1:8])}, ...).")
    schema = {field["name"]: field for field in table_schema("deployments")["fields"]}
    out = {}
    for line, row in enumerate(rows, start=2):
        if None in row:
            raise DeploymentsFileError(f"{path} line {line} has more cells than the header's {len(columns)} "
                                       "columns: remove the extra cells (or quote a cell holding a comma).")
        row = dict(zip(columns, row.values()))
        site = (row.pop("site") or "").strip()
        if site in out:
            raise DeploymentsFileError(f"{path} line {line}: site {site!r} is listed twice.")
        fields = {k: v.strip() for k, v in row.items() if v and v.strip()}
        for key in ("deploymentStart", "deploymentEnd"):
            if key in fields:
                fields[key] = iso(_parse_time(fields[key], f"{path} line {line}"))
        for key, value in fields.items():
            problem = check_cell(value, schema[key])
            if problem:
                raise DeploymentsFileError(f"{path} line {line}, {key}: {problem} (Camtrap DP's rule for {key}).")
        for key in ("latitude", "longitude"):
            if key in fields:
                fields[key] = float(fields[key])
        if fields.get("deploymentEnd", "~") < fields.get("deploymentStart", ""):
            raise DeploymentsFileError(f"{path} line {line}: deploymentEnd {fields['deploymentEnd']} is before "
                                       f"deploymentStart {fields['deploymentStart']}.")
        out[site] = fields
    return out


def check_coordinates(sites: list[str], given: dict[str, dict], drop: bool, source: str | None) -> list[str]:
    """The sites to leave out (without coordinates, when ``drop``); else raise :class:`MissingCoordinates`."""
    missing = sorted(s for s in sites if "latitude" not in given.get(s, {}) or "longitude" not in given.get(s, {}))
    if missing and not drop:
        where = f"in {source}" if source else "(no --deployments file given)"
        raise MissingCoordinates(
            f"{len(missing)} site(s) have no latitude/longitude {where}: {', '.join(missing)}. Camtrap DP requires "
            "coordinates: pass --deployments FILE (a CSV with site,latitude,longitude[,deploymentStart,"
            "deploymentEnd,cameraModel,...]), or --drop-sites-without-coordinates to leave those sites out.")
    return missing


def deployment_rows(data: ExportData, given: dict[str, dict]) -> list[dict]:
    """One deployment per site; start/end default to its first clip's start and last clip's end;
    ``timestampIssues`` is true when a clip's time is its file's modification time or has no known zone."""
    spans: dict[str, list[datetime]] = {}
    issues: dict[str, bool] = {}
    for video in data.videos:
        start = video["captured_at"]
        end = start + timedelta(seconds=video["duration"] or 0.0)
        site = site_of(video)
        span = spans.setdefault(site, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
        untrusted = video["time_source"] in UNTRUSTED or video["utc_offset_minutes"] is None
        issues[site] = issues.get(site, False) or untrusted
    rows = []
    for site in sorted(spans):
        first, last = spans[site]
        rows.append({"deploymentID": site, "locationName": site, "deploymentStart": iso(first),
                     "deploymentEnd": iso(_ceil_second(last)), "timestampIssues": issues[site],
                     **given.get(site, {})})
    return rows


# ----------------------------------------------------------------------------------------------- media
def _ingest_root(video: dict) -> PurePosixPath:
    """The folder the video was ingested from: its path less its relative path (else its folder)."""
    path, relpath = PurePosixPath(video["path"]), video["relpath"]
    if relpath and path.as_posix().endswith("/" + PurePosixPath(relpath).as_posix()):
        return PurePosixPath(path.as_posix()[:-len(PurePosixPath(relpath).as_posix()) - 1])
    return path.parent


def media_root(videos: list[dict], given: str | None) -> PurePosixPath:
    """The folder every ``filePath`` is relative to: ``given``, else the folder holding the
    collection (the parent of the common folder of the ingested folders).

    Raises:
        InputError: a video is not inside ``given``, listed.
    """
    import os

    if given is not None:
        root = PurePosixPath(os.path.abspath(given))
        outside = sorted(v["path"] for v in videos if not PurePosixPath(v["path"]).is_relative_to(root))
        if outside:
            raise InputError(f"--media-root {given}: {len(outside)} video(s) are not inside it: "
                             f"{', '.join(outside[:5])}. Give a folder that holds every exported video.")
        return root
    common = PurePosixPath(os.path.commonpath([str(_ingest_root(v)) for v in videos]))
    return common.parent


def file_path(video: dict, root: PurePosixPath, media_base: str | None) -> str:
    """``filePath``: ``media_base`` + the video's path relative to ``root``, with ``/``."""
    relative = PurePosixPath(video["path"]).relative_to(root).as_posix()
    path = (media_base.rstrip("/") + "/" + relative) if media_base else relative
    if path[:1] in "./~" or ".." in path:
        raise InputError(f"filePath {path!r} is not allowed by Camtrap DP (no leading '/', '.' or '~', no '..'). "
                         "Give --media-base as a URL or a relative folder.")
    return path


def mediatype(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return _MEDIATYPES.get(suffix, f"video/{suffix.lstrip('.') or 'unknown'}")


def media_rows(data: ExportData, config: CamtrapConfig, root: PurePosixPath) -> list[dict]:
    rows = [{"mediaID": v["video_id"], "deploymentID": site_of(v), "captureMethod": config.capture_method,
             "timestamp": iso(v["captured_at"]), "filePath": file_path(v, root, config.media_base),
             "filePublic": config.file_public, "fileName": v["filename"], "fileMediatype": mediatype(v["filename"])}
            for v in data.videos]
    return sorted(rows, key=lambda r: (r["deploymentID"], r["timestamp"], r["mediaID"]))


# ----------------------------------------------------------------------------------------------- observations
def classified_by(model_id: str, recipe: str | None = None) -> str:
    """The machine's ``classifiedBy``: jungle's version and the named model."""
    return f"jungle {code_version()} model {model_id}" + (f" ({recipe})" if recipe else "")


def human_classifiers(data: ExportData, given: str | None) -> list[str | None]:
    """Per video the person who classified it: its latest review change's reviewer, else ``given``
    (None for unlabelled videos, or when nobody is known)."""
    return [(reviewer or given) if labelled else None for labelled, reviewer in zip(data.labelled, data.reviewers)]


def _observations(base: dict, classes: list, taxonomy: Taxonomy, positive: np.ndarray, probability: np.ndarray,
                  human: bool, method_by: str, stamp: str | None) -> list[dict]:
    """Observations of one media file or event: one per positive class, or one ``unknown``."""
    method = {"classificationMethod": "human" if human else "machine", "classifiedBy": method_by,
              "classificationTimestamp": None if human else stamp}
    found = np.flatnonzero(positive)
    if not len(found):
        return [{**base, "observationID": f"{base['observationID']}-unknown", "observationType": "unknown", **method}]
    rows = []
    for j in found:
        taxon = taxonomy[classes[j]]
        rows.append({**base, "observationID": f"{base['observationID']}-{j:02d}",
                     "observationType": taxon.observation_type, "scientificName": taxon.scientific_name, **method,
                     "classificationProbability": None if human else float(probability[j])})
    return rows


def effective_probabilities(data: ExportData) -> np.ndarray:
    """Per video the machine's probabilities, replaced by the 0/1 human labels where there are some."""
    return np.where(data.labelled[:, None], data.labels, data.probabilities)


def media_observations(data: ExportData, events: dict, taxonomy: Taxonomy, thresholds: dict,
                       people: list[str | None], counts: dict | None = None) -> list[dict]:
    """Media-level observations: one per positive class (or one ``unknown``), with ``jungle count``'s
    counts and boxes where there are some (``counts``: video_id -> its count row; :mod:`.counts`)."""
    machine_by = classified_by(data.model_id, data.recipe)
    machine = passes(np.nan_to_num(data.probabilities, nan=-1.0), thresholds, data.classes)
    rows = []
    for i, video in enumerate(data.videos):
        event = events[video["video_id"]]
        base = {"observationID": video["video_id"], "deploymentID": site_of(video), "mediaID": video["video_id"],
                "eventID": event["event_id"], "eventStart": iso(event["clip_start"]),
                "eventEnd": iso(_ceil_second(event["clip_end"])), "observationLevel": "media"}
        human = bool(data.labelled[i])
        positive = data.labels[i] > 0 if human else machine[i]
        stamp = iso(data.predicted_at[i]) if data.predicted_at[i] else None
        found = _observations(base, data.classes, taxonomy, positive, data.probabilities[i], human,
                              people[i] if human else machine_by, stamp)
        labels = [data.classes[j] for j in np.flatnonzero(positive)] or [None]
        rows += with_counts(found, labels, (counts or {}).get(video["video_id"]))
    return rows


def event_observations(data: ExportData, events: dict, taxonomy: Taxonomy, thresholds: dict,
                       rule: EventRule, people: list[str | None]) -> tuple[list[dict], int]:
    """Event-level observations and the number of events."""
    event_of = [events[v["video_id"]]["event_id"] for v in data.videos]
    ids, P = event_probabilities(effective_probabilities(data), event_of, rule)
    members: dict[str, list[int]] = {}
    for i, event_id in enumerate(event_of):
        members.setdefault(event_id, []).append(i)
    machine_by = classified_by(data.model_id, data.recipe)
    positive = passes(P, thresholds, data.classes)
    rows = []
    for k, event_id in enumerate(ids):
        clips = members[event_id]
        event = events[data.videos[clips[0]]["video_id"]]
        base = {"observationID": event_id, "deploymentID": site_of(data.videos[clips[0]]), "eventID": event_id,
                "eventStart": iso(event["event_start"]), "eventEnd": iso(_ceil_second(event["event_end"])),
                "observationLevel": "event"}
        human = bool(data.labelled[clips].all())
        stamps = [data.predicted_at[j] for j in clips if data.predicted_at[j]]
        names = sorted({people[j] for j in clips if people[j]})
        rows += _observations(base, data.classes, taxonomy, P[k] > 0.5 if human else positive[k], P[k], human,
                              ("; ".join(names) or None) if human else f"{machine_by}, {rule} over the event's clips",
                              iso(max(stamps)) if stamps else None)
    return rows, len(ids)


# ----------------------------------------------------------------------------------------------- descriptor
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "jungle-export"


_CONTRIBUTOR = re.compile(r"\s*(.*?)\s*<([^>]+)>\s*")
"""``Name <email>``; a contributor without ``<...>`` is a name alone."""


def _contributors(names: tuple[str, ...]) -> list[dict]:
    out = []
    for k, name in enumerate(names):
        match = _CONTRIBUTOR.fullmatch(name)
        entry = {"title": match.group(1), "email": match.group(2)} if match else {"title": name.strip()}
        entry["role"] = "contact" if k == 0 else "contributor"
        out.append(entry)
    return out


def spatial(deployments: list[dict]) -> dict:
    """GeoJSON of the deployments: a Point for one location, else their bounding box."""
    lats = [d["latitude"] for d in deployments]
    lons = [d["longitude"] for d in deployments]
    if min(lats) == max(lats) and min(lons) == max(lons):
        return {"type": "Point", "coordinates": [lons[0], lats[0]]}
    w, e, s, n = min(lons), max(lons), min(lats), max(lats)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def resources_of() -> list[dict]:
    """The package's three resources, with the official table schemas."""
    return [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
             "mediatype": "text/csv", "encoding": "utf-8", "schema": SCHEMA_URLS[name]}
            for name in ("deployments", "media", "observations")]


def descriptor(config: CamtrapConfig, deployments: list[dict], observations: list[dict], taxonomy: Taxonomy,
               extra: dict, jungle: dict) -> dict:
    names = sorted({o["scientificName"] for o in observations if o.get("scientificName")})
    by_name = {t.scientific_name: t for t in taxonomy.taxa.values() if t.scientific_name}
    package = {
        "resources": resources_of(),
        "profile": PROFILE_URL,
        "name": _slug(config.title),
        "created": created_time(config.created),
        "title": config.title,
        "contributors": _contributors(config.contributors),
        "sources": [{"title": "jungle", "version": jungle["code_version"]}],
        "project": {"title": config.title, "samplingDesign": config.sampling_design,
                    "captureMethod": [config.capture_method], "individualAnimals": False,
                    "observationLevel": ["media", "event"]},
        "spatial": spatial(deployments),
        "temporal": {"start": min(d["deploymentStart"] for d in deployments)[:10],
                     "end": max(d["deploymentEnd"] for d in deployments)[:10]},
        "taxonomic": [by_name[n].coverage() for n in names],
        "jungle": jungle,
    }
    licenses = [{"name": name, "scope": scope} for name, scope in ((config.data_license, "data"),
                                                                   (config.media_license, "media")) if name]
    if licenses:
        package["licenses"] = licenses
    for key, value in extra.items():
        package[key] = {**package[key], **value} if key == "project" and isinstance(value, dict) else value
    if not package["contributors"]:
        raise InputError("Camtrap DP requires at least one contributor: pass --contributor \"Name <email>\" "
                         "(the first is the contact), or a --metadata JSON file with \"contributors\".")
    return package


RESERVED_METADATA = ("resources", "profile", "created", "spatial", "temporal", "taxonomic", "jungle")
"""datapackage.json properties --metadata may not set: jungle writes them from the data (``created``
with --created)."""


def read_metadata(path: str | None) -> dict:
    """The JSON object of the --metadata file: properties merged into datapackage.json.

    Raises:
        InputError: not a JSON object, NaN or infinite numbers, or a property jungle writes itself
            (:data:`RESERVED_METADATA`).
    """
    import json

    if path is None:
        return {}
    text = read_user_text(path, "metadata file")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"cannot read the metadata file {path}: {str(exc)[:200]}. Pass a JSON object of "
                         "datapackage.json properties (title, contributors, licenses, project, ...).") from None
    if not isinstance(data, dict):
        raise InputError(f"the metadata file {path} must hold a JSON object, not {type(data).__name__}.")
    reserved = [key for key in RESERVED_METADATA if key in data]
    if reserved:
        raise InputError(f"the metadata file {path} sets {', '.join(reserved)}, which jungle writes from the data "
                         "(the package's resources, profile and coverage; --created pins created): remove them.")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def defaults_said(config: CamtrapConfig, metadata: dict, package: dict, root: PurePosixPath,
                  unnamed: int) -> tuple[str, ...]:
    """The notes that say what the package holds because nobody gave it: the sampling design,
    missing licences, the folder of ``filePath``, human observations without a person."""
    notes = []
    project = metadata.get("project") if isinstance(metadata.get("project"), dict) else {}
    if "sampling_design" not in config.model_fields_set and "samplingDesign" not in project:
        notes.append(f"samplingDesign is {config.sampling_design!r}, the default: set it with --sampling-design "
                     "or project.samplingDesign in --metadata.")
    if "licenses" not in package:
        notes.append("the package has no licences, so nobody may reuse it: pass --data-license and "
                     "--media-license (e.g. CC-BY-4.0), or licenses in --metadata.")
    how = "--media-root" if config.media_root else "the folder holding the collection; --media-root sets another"
    notes.append(f"filePath is relative to {root} ({how})" + (f", after --media-base {config.media_base}."
                                                             if config.media_base else "."))
    if unnamed:
        notes.append(f"{unnamed} human observation(s) have no classifiedBy: pass --classified-by NAME (who labelled "
                     "the imported labels); review labels name their `jungle review --reviewer`.")
    return tuple(notes)


# ----------------------------------------------------------------------------------------------- export
def export_camtrap_dp(workspace, out_dir: Path, config: CamtrapConfig | None = None) -> CamtrapResult:
    """Write the Camtrap DP package of the workspace's results to ``out_dir``.

    Raises:
        UnknownModel, ForeignModel, NoPredictions, UnpredictedVideos: see :mod:`jungle.export.source`.
        MissingCoordinates, DeploymentsFileError, TaxonomyError, InputError: bad input, listed.
    """
    config = config or CamtrapConfig()
    out_dir = Path(out_dir)
    taxonomy = load_taxonomy(config.taxonomy)
    given = read_deployments_file(config.deployments)
    metadata = read_metadata(config.metadata)
    data = load_export_data(workspace, config.model, config.only_predicted, labels_count=True)
    taxonomy.check(data.classes)
    undated = sorted(v["relpath"] or v["path"] for v in data.videos if v["captured_at"] is None)
    if undated:
        raise InputError(f"{len(undated)} video(s) have no recording time: {', '.join(undated[:10])}. "
                         "Re-run `jungle ingest` on their folder.")
    dropped = check_coordinates(sorted({site_of(v) for v in data.videos}), given,
                                config.drop_sites_without_coordinates, config.deployments)
    data = data.subset(np.array([site_of(v) not in dropped for v in data.videos], dtype=bool))
    if not data.videos:
        raise MissingCoordinates("no site has coordinates, so the package would be empty. Pass --deployments FILE.")
    oof = load_oof(workspace, data.model_id, data.classes) if config.thresholds.target_precision else None
    thresholds = resolve_thresholds(config.thresholds, data.classes, oof)
    events = group_events(data.videos, config.event_gap_s)
    deployments = deployment_rows(data, given)
    people = human_classifiers(data, config.classified_by)
    media_level = media_observations(data, events, taxonomy, thresholds.values, people,
                                     clip_counts(workspace, [v["video_id"] for v in data.videos]))
    event_rows, n_events = event_observations(data, events, taxonomy, thresholds.values, config.event_rule, people)
    observations = sorted(media_level + event_counts(event_rows, media_level),
                          key=lambda o: (o["deploymentID"], o["eventStart"], o["observationLevel"], o["observationID"]))
    root = media_root(data.videos, config.media_root)
    jungle = {"code_version": code_version(), "model": data.model_id, "recipe": data.recipe,
              "threshold_rule": config.thresholds.rule, "target_precision": config.thresholds.target_precision,
              "thresholds": thresholds.values, "threshold_fallbacks": thresholds.fallbacks,
              "event_gap_s": config.event_gap_s, "event_probability": config.event_rule,
              "timestamps": "UTC, from the times file the user gave, else the container's creation time, else the "
                            "file's modification time (videos.time_source); a deployment with clips timed by "
                            "modification time or without a known zone has timestampIssues true",
              "file_paths": "relative to the folder holding the collection" if config.media_root is None
                            else "relative to the folder given with --media-root",
              "counts": "jungle count: a person's count of the clip (review) else MaxN, the most tracks alive at "
                        "once; per class where tracks have classes; an event's is the largest of its clips'; the "
                        "box surrounds the animals of the frame where MaxN is reached"}
    package = descriptor(config, deployments, observations, taxonomy, metadata, jungle)
    media = media_rows(data, config, root)
    texts = {"deployments.csv": csv_text(DEPLOYMENT_FIELDS, deployments), "media.csv": csv_text(MEDIA_FIELDS, media),
             "observations.csv": csv_text(OBSERVATION_FIELDS, observations)}
    check_package(texts, package, resources_of(), PROFILE_URL)  # what is written is checked first
    texts["datapackage.json"] = json_text(package, "datapackage.json")
    texts[RECORD] = record_text(config, model=data.model_id, thresholds=thresholds.values,
                                threshold_fallbacks=thresholds.fallbacks, media_root=str(root),
                                taxonomy=taxonomy.source, dropped_sites=dropped, skipped_videos=data.skipped)
    with replace_folder(out_dir, list(texts)) as folder:
        for name, text in texts.items():
            (folder / name).write_text(text, encoding="utf-8", newline="")
    formulas = formula_cells(deployments, DEPLOYMENT_FIELDS) + formula_cells(media, MEDIA_FIELDS) + \
        formula_cells(observations, OBSERVATION_FIELDS)
    unnamed = sum(1 for o in observations if o["classificationMethod"] == "human" and not o["classifiedBy"])
    notes = formula_note(formulas, out_dir) + defaults_said(config, metadata, package, root, unnamed)
    warning = thresholds.warning(config.thresholds.target_precision)
    result = CamtrapResult(out_dir=str(out_dir), model_id=data.model_id, deployments=len(deployments),
                           media=len(data.videos), observations=len(observations), events=n_events,
                           dropped_sites=tuple(dropped), skipped_videos=len(data.skipped),
                           notes=notes,
                           warnings=(warning,) if warning else ())
    return result
