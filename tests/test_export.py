"""`jungle export camtrap-dp | csv`: a Camtrap DP package frictionless validates offline, events,
human labels over machine ones, round trips, identical bytes on re-export, and each refusal."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _errors import cli_error
from _export_helpers import (SITES, copy_workspace, errors_of, read_json, validate_package,
                             write_deployments)
from jungle.cli import app
from jungle.store.events import group_events
from jungle.export.thresholds import fit_precision_thresholds
from jungle.store.db import connect

runner = CliRunner()
CREATED = "2026-12-01T00:00:00Z"


def _export(ws, out: Path, *options: str, deployments: Path | None = None):
    args = ["export", "camtrap-dp", str(out), "-w", str(ws.root), "--created", CREATED,
            "--contributor", "Ada Lovelace <ada@example.org>", "-f", "csv", *options]
    if deployments is not None:
        args += ["--deployments", str(deployments)]
    return runner.invoke(app, args)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _predictions(ws, model_id: str) -> dict[str, dict[str, float]]:
    """What the model says of each clip out of sample, from the current_predictions view (the model is
    the current one): out of fold for its training clips, its predict rows for the others."""
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT video_id, class, probability, model_id FROM current_predictions").fetchall()
    assert {r[3] for r in rows} == {model_id}
    out: dict = {}
    for video_id, label, p, _ in rows:
        out.setdefault(video_id, {})[label] = p
    return out


@pytest.fixture(scope="module")
def exported(predicted, tmp_path_factory):
    """(StackWorkspace, model id, workspace, package folder, deployments CSV)."""
    sw, model_id, ws = predicted
    folder = tmp_path_factory.mktemp("package")
    deployments = write_deployments(folder / "deployments-in.csv")
    result = _export(ws, folder / "pkg", deployments=deployments)
    assert result.exit_code == 0, result.output
    return sw, model_id, ws, folder / "pkg", deployments


def test_package_validates_against_the_local_camtrap_dp_profile(exported, tmp_path):
    _, model_id, _, package, _ = exported
    report = validate_package(package, tmp_path / "ok")
    assert report.valid, errors_of(report)
    assert errors_of(report) == []
    descriptor = read_json(package / "datapackage.json")
    assert descriptor["profile"] == "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json"
    assert descriptor["created"] == CREATED and descriptor["temporal"] == {"start": "2026-03-01", "end": "2026-03-01"}
    assert descriptor["jungle"]["model"] == model_id and descriptor["jungle"]["threshold_rule"] == "fixed"
    assert {t["scientificName"] for t in descriptor["taxonomic"]} == {"Pan troglodytes", "Cephalophinae", "Loxodonta"}
    # The same validation catches a broken package: one latitude out of range is exactly one error.
    broken = tmp_path / "broken"
    shutil.copytree(package, broken)
    text = (broken / "deployments.csv").read_text()
    (broken / "deployments.csv").write_text(text.replace(",-1.5,", ",951.5,", 1))
    report = validate_package(broken, tmp_path / "bad")
    assert [e[0] for e in errors_of(report)] == ["constraint-error"]


def test_tables_hold_sites_videos_and_recorded_times(exported):
    sw, _, ws, package, _ = exported
    deployments = _rows(package / "deployments.csv")
    assert [d["deploymentID"] for d in deployments] == list(SITES)
    assert deployments[0]["latitude"] == "-1.5" and deployments[0]["cameraModel"] == "Bushnell-TrophyCam"
    assert deployments[0]["deploymentStart"] == "2026-03-01T06:00:00Z"
    media = _rows(package / "media.csv")
    assert len(media) == len(sw.labelled) + len(sw.unlabelled)
    first = media[0]
    assert (first["deploymentID"], first["timestamp"], first["filePath"], first["fileMediatype"]) == (
        "cam_a", "2026-03-01T06:00:00Z", "collection/cam_a/clip00000.mp4", "video/mp4")  # the collection's folder kept
    assert media == sorted(media, key=lambda m: (m["deploymentID"], m["timestamp"], m["mediaID"]))


def test_round_trip_top_classes_equal_the_predictions_table(exported, tmp_path):
    """With threshold 0 every class is an observation; the most probable one per video is the
    predictions table's top class, with the same probability to the last bit."""
    sw, model_id, ws, _, deployments = exported
    result = _export(ws, tmp_path / "all", "--threshold", "0", deployments=deployments)
    assert result.exit_code == 0, result.output
    best: dict[str, tuple[float, str]] = {}
    names = {"blank": "", "chimpanzee": "Pan troglodytes", "duiker": "Cephalophinae", "elephant": "Loxodonta"}
    for row in _rows(tmp_path / "all" / "observations.csv"):
        if row["observationLevel"] == "media" and row["classificationMethod"] == "machine":
            p = float(row["classificationProbability"])
            name = row["scientificName"] if row["observationType"] == "animal" else "blank"
            best[row["mediaID"]] = max(best.get(row["mediaID"], (-1.0, "")), (p, name))
    table = _predictions(ws, model_id)
    assert set(best) == set(sw.unlabelled)  # labelled videos export their human labels instead
    for video_id, (p, name) in best.items():
        top = max(table[video_id], key=table[video_id].get)
        assert (table[video_id][top], names[top] or "blank") == (p, name)


def test_human_labels_win_over_the_machine(exported):
    sw, _, ws, package, _ = exported
    observations = [o for o in _rows(package / "observations.csv") if o["observationLevel"] == "media"]
    labelled = set(sw.labelled)
    by_media: dict[str, list[dict]] = {}
    for o in observations:
        by_media.setdefault(o["mediaID"], []).append(o)
    for k, video_id in enumerate(sw.labelled[:40]):
        rows = by_media[video_id]
        assert {r["classificationMethod"] for r in rows} == {"human"}
        assert all(r["classificationProbability"] == "" for r in rows)
        kinds = sorted(r["observationType"] if r["observationType"] != "animal" else r["scientificName"] for r in rows)
        expected = sorted({"blank": "blank", "chimpanzee": "Pan troglodytes", "duiker": "Cephalophinae",
                           "elephant": "Loxodonta"}[c] for c, y in zip(sw.classes, sw.Y[k]) if y)
        assert kinds == expected
    machine = {o["mediaID"] for o in observations if o["classificationMethod"] == "machine"}
    assert machine and not machine & labelled


def test_event_grouping_follows_the_gap_between_clips():
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    clips = [
        {"video_id": "a", "site": "s1", "captured_at": t0, "duration": 10.0},
        {"video_id": "b", "site": "s1", "captured_at": t0 + timedelta(seconds=70), "duration": 10.0},  # 60 s after a
        {"video_id": "c", "site": "s1", "captured_at": t0 + timedelta(seconds=141), "duration": 10.0},  # 61 s after b
        {"video_id": "d", "site": "s2", "captured_at": t0 + timedelta(seconds=5), "duration": None},    # other site
        {"video_id": "e", "site": "s1", "captured_at": t0 + timedelta(seconds=150), "duration": 5.0},   # overlaps c
    ]
    events = group_events(clips, gap_s=60)
    assert {v: e["event_id"] for v, e in events.items()} == {"a": "ev-a", "b": "ev-a", "c": "ev-c", "d": "ev-d",
                                                             "e": "ev-c"}
    assert (events["a"]["event_start"], events["a"]["event_end"]) == (t0, t0 + timedelta(seconds=80))
    assert events["c"]["event_clips"] == 2 and events["c"]["event_end"] == t0 + timedelta(seconds=155)
    assert group_events(clips, gap_s=61)["c"]["event_id"] == "ev-a"


def test_event_observations_and_the_events_view(exported):
    """Bursts of three clips 20 s apart make one event; bursts 10 min apart do not. The `events`
    view answers `jungle sql` with the same grouping."""
    sw, model_id, ws, package, _ = exported
    events = [o for o in _rows(package / "observations.csv") if o["observationLevel"] == "event"]
    media = _rows(package / "media.csv")
    assert len({o["eventID"] for o in events}) == len(media) // 3
    first = [o for o in events if o["eventID"] == events[0]["eventID"]]
    assert (first[0]["eventStart"], first[0]["eventEnd"]) == ("2026-03-01T06:00:00Z", "2026-03-01T06:01:26Z")
    out = runner.invoke(app, ["sql", "SELECT count(DISTINCT event_id) AS events, max(event_clips) AS clips FROM events",
                              "-w", str(ws.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output == f"events,clips\n{len(media) // 3},3\n"
    out = runner.invoke(app, ["sql", "SELECT count(*) FROM event_predictions WHERE kind = 'predict' AND "
                              f"model_id = '{model_id}' AND max_probability > noisy_or_probability", "-w",
                              str(ws.root), "-f", "csv"])
    assert out.exit_code == 0 and out.output.splitlines()[1] == "0"  # noisy-OR is never below the max


def test_export_twice_gives_identical_bytes(exported, tmp_path):
    _, _, ws, package, deployments = exported
    again = _export(ws, tmp_path / "again", deployments=deployments)
    assert again.exit_code == 0, again.output
    names = sorted(p.name for p in package.iterdir())
    assert names == ["datapackage.json", "deployments.csv", "jungle-export.json", "media.csv", "observations.csv"]
    for name in names:
        assert (tmp_path / "again" / name).read_bytes() == (package / name).read_bytes(), name


def test_fitted_thresholds_reach_the_target_precision_out_of_fold(exported, tmp_path):
    P = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    Y = np.array([[1], [1], [0], [1], [0], [0]])
    assert fit_precision_thresholds(P, Y, 0.75) == [0.6]   # 3 of the 4 at or above 0.6
    assert fit_precision_thresholds(P, Y, 1.0) == [0.8]
    assert fit_precision_thresholds(np.array([[0.3], [0.2]]), np.array([[0], [0]]), 0.5) == [None]
    _, _, ws, _, deployments = exported
    result = _export(ws, tmp_path / "fitted", "--target-precision", "0.9", deployments=deployments)
    assert result.exit_code == 0, result.output
    record = read_json(tmp_path / "fitted" / "jungle-export.json")
    assert record["config"]["thresholds"]["target_precision"] == 0.9
    assert set(record["thresholds"]) == {"blank", "chimpanzee", "duiker", "elephant"}
    assert read_json(tmp_path / "fitted" / "datapackage.json")["jungle"]["threshold_rule"] == "fitted"


def test_classes_that_cannot_reach_the_target_get_the_stated_fallback_and_one_warning(exported, tmp_path):
    """A class whose most probable clip (out of fold) is labelled otherwise can never reach precision 1:
    it gets the fixed 0.5 (never a threshold below it), listed on one warning line and recorded."""
    from jungle.export.source import load_oof
    from jungle.review.labels_store import set_labels

    sw, model_id, exported_ws, _, deployments = exported
    ws = copy_workspace(exported_ws, tmp_path / "ws")
    classes = list(sw.classes)
    P, _ = load_oof(ws, model_id, classes)
    labelled = sorted(set(sw.labelled))   # load_oof's row order
    set_labels(ws, labelled[int(P[:, 3].argmax())], ["blank"], session="s")   # elephant's surest clip: a blank
    P, Y = load_oof(ws, model_id, classes)
    reachable = dict(zip(classes, fit_precision_thresholds(P, Y, 1.0)))
    unreachable = [c for c, t in reachable.items() if t is None]
    assert "elephant" in unreachable and len(unreachable) < 4   # the test needs both kinds
    result = _export(ws, tmp_path / "strict", "--target-precision", "1.0", deployments=deployments)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"warning: {len(unreachable)} of 4 classes cannot reach precision 1 out of fold; "
                                  "they use the fixed threshold 0.5 instead")
    assert all(f" {c} " in warnings[0] for c in unreachable)
    package = read_json(tmp_path / "strict" / "datapackage.json")["jungle"]
    assert set(package["threshold_fallbacks"]) == set(unreachable)
    for c, t in reachable.items():
        assert package["thresholds"][c] == (0.5 if t is None else t)
    for c in unreachable:
        fallback = package["threshold_fallbacks"][c]
        above = P[:, list(reachable).index(c)] >= 0.5
        assert fallback["clips"] == int(above.sum()) and fallback["threshold"] == 0.5
        precision = Y[above, list(reachable).index(c)].mean() if above.any() else None
        assert fallback["precision"] == (None if precision is None else round(float(precision), 4))
        assert fallback["best_precision"] < 1.0
    record = read_json(tmp_path / "strict" / "jungle-export.json")
    assert record["threshold_fallbacks"] == package["threshold_fallbacks"]


def test_who_classified_licences_sampling_design_and_file_paths_are_stated(exported, tmp_path):
    from jungle.review.labels_store import set_labels

    sw, model_id, ws, _, deployments = exported
    copy = copy_workspace(ws, tmp_path / "ws")
    set_labels(copy, sw.labelled[0], ["elephant"], session="s", reviewer="Jane Goodall")
    # Without the options: the defaults are said, nobody is named for the imported labels.
    plain = _export(copy, tmp_path / "plain", deployments=deployments)
    assert plain.exit_code == 0, plain.output
    notes = [line for line in plain.stderr.splitlines() if line.startswith("note: ")]
    assert notes[0] == ("note: samplingDesign is 'opportunistic', the default: set it with --sampling-design or "
                        "project.samplingDesign in --metadata.")
    assert notes[1].startswith("note: the package has no licences")
    assert notes[2] == ("note: filePath is relative to /data (the folder holding the collection; --media-root "
                        "sets another).")
    assert re.fullmatch(r"note: \d+ human observation\(s\) have no classifiedBy: pass --classified-by NAME .*",
                        notes[3])
    observations = _rows(tmp_path / "plain" / "observations.csv")
    people = {o["classifiedBy"] for o in observations if o["classificationMethod"] == "human"}
    assert people == {"", "Jane Goodall"}   # no absolute label-file path, no word "review"
    machine = {o["classifiedBy"] for o in observations if o["classificationMethod"] == "machine"}
    assert all(m.startswith("jungle ") and f"model {model_id}" in m for m in machine)

    # With them: nothing left unsaid, a person for every human observation, licences in the package.
    given = _export(copy, tmp_path / "given", "--classified-by", "Ana Ruiz", "--data-license", "CC-BY-4.0",
                    "--media-license", "CC-BY-NC-4.0", "--sampling-design", "targeted", "--media-root",
                    "/data/collection", deployments=deployments)
    assert given.exit_code == 0, given.output
    assert [line for line in given.stderr.splitlines() if line.startswith("note: ")] == [
        "note: filePath is relative to /data/collection (--media-root)."]
    descriptor = read_json(tmp_path / "given" / "datapackage.json")
    assert descriptor["licenses"] == [{"name": "CC-BY-4.0", "scope": "data"},
                                      {"name": "CC-BY-NC-4.0", "scope": "media"}]
    assert descriptor["project"]["samplingDesign"] == "targeted"
    rows = _rows(tmp_path / "given" / "observations.csv")
    media_people = {o["mediaID"]: o["classifiedBy"] for o in rows
                    if o["classificationMethod"] == "human" and o["observationLevel"] == "media"}
    assert media_people[sw.labelled[0]] == "Jane Goodall"
    assert set(media_people.values()) == {"Jane Goodall", "Ana Ruiz"}
    assert _rows(tmp_path / "given" / "media.csv")[0]["filePath"] == "cam_a/clip00000.mp4"
    report = validate_package(tmp_path / "given", tmp_path / "valid")
    assert report.valid, errors_of(report)
    # one licence alone is refused (Camtrap DP needs both scopes)
    alone = _export(copy, tmp_path / "alone", "--data-license", "CC0-1.0", deployments=deployments)
    assert alone.exit_code == 1 and "--media-license" in alone.output


def test_csv_export_is_the_wide_per_video_table(exported, tmp_path):
    sw, model_id, ws, _, _ = exported
    out = runner.invoke(app, ["export", "csv", str(tmp_path / "p.csv"), "-w", str(ws.root), "-f", "csv"])
    assert out.exit_code == 0, out.output
    n = len(sw.labelled) + len(sw.unlabelled)
    assert out.output == f"out,model_id,videos,classes\n{tmp_path / 'p.csv'},{model_id},{n},4\n"
    rows = _rows(tmp_path / "p.csv")
    assert list(rows[0]) == ["filepath", "filename", "site", "timestamp", "time_source", "label", "label_source",
                             "top_class", "probabilities", "count", "count_source", *sw.classes]
    assert rows[0]["filepath"] == "cam_a/clip00000.mp4" and rows[0]["timestamp"] == "2026-03-01T06:00:00Z"
    table = _predictions(ws, model_id)
    with connect(ws, read_only=True) as con:
        ids = dict(con.execute("SELECT relpath, video_id FROM videos").fetchall())
    labels = dict(zip(sw.labelled, sw.Y))
    for row in rows:
        video_id = ids[row["filepath"]]
        probabilities = table[video_id]
        assert row["top_class"] == max(probabilities, key=probabilities.get)
        assert [row[c] for c in sw.classes] == [f"{min(max(probabilities[c], 1e-6), 1 - 1e-6):.6f}"
                                                for c in sw.classes]
        if video_id in labels:  # labelled: the human label beside, and out-of-fold probabilities
            assert row["label"] == ";".join(c for c, y in zip(sw.classes, labels[video_id]) if y)
            assert (row["label_source"], row["probabilities"]) == ("test", "oof")
        else:
            assert (row["label"], row["label_source"], row["probabilities"]) == ("", "", "predict")
    record = read_json(tmp_path / "p.export.json")
    assert (record["model"], record["probability_digits"]) == (model_id, 6)


# ------------------------------------------------------------------------------------------------ refusals
def test_unknown_model_is_refused(exported, tmp_path):
    _, model_id, ws, _, deployments = exported
    out = _export(ws, tmp_path / "x", "--model", "nope", deployments=deployments)
    assert out.exit_code == 1
    cli_error(out.output, '"nope"', ws.models_dir, model_id, "--model")
    assert not (tmp_path / "x").exists()


def test_model_from_another_workspace_is_refused(exported, tmp_path):
    sw, model_id, ws, _, deployments = exported
    other = sw.workspace  # the stack's own workspace: it has models but these videos' predictions are elsewhere
    folder = other.models_dir / model_id
    fresh = copy_workspace(ws, tmp_path / "fresh")
    with connect(fresh) as con:
        con.execute("DELETE FROM predictions")
    shutil.rmtree(fresh.models_dir)
    out = _export(fresh, tmp_path / "x", "--model", str(folder), deployments=deployments)
    assert out.exit_code == 1
    cli_error(out.output, folder, "another workspace", fresh.root, "--workspace",
              f"`jungle predict --model {folder} --videos all`")


def test_videos_without_predictions_are_listed(exported, tmp_path):
    sw, model_id, ws, _, deployments = exported
    fresh = copy_workspace(ws, tmp_path / "fresh")
    with connect(fresh) as con:
        con.execute("DELETE FROM predictions WHERE kind = 'predict' AND video_id IN (SELECT video_id FROM videos "
                    "WHERE relpath IN ('cam_a/clip00267.mp4', 'cam_c/clip00269.mp4'))")
    out = _export(fresh, tmp_path / "x", deployments=deployments)
    assert out.exit_code == 1
    cli_error(out.output, model_id, "cam_a/clip00267.mp4, cam_c/clip00269.mp4",
              f"`jungle predict --model {model_id} --videos all`", "--only-predicted")
    kept = _export(fresh, tmp_path / "y", "--only-predicted", deployments=deployments)
    assert kept.exit_code == 0, kept.output
    assert len(_rows(tmp_path / "y" / "media.csv")) == len(sw.labelled) + len(sw.unlabelled) - 2
    assert read_json(tmp_path / "y" / "jungle-export.json")["skipped_videos"] == ["cam_a/clip00267.mp4",
                                                                                 "cam_c/clip00269.mp4"]


def test_sites_without_coordinates_are_listed(exported, tmp_path):
    sw, _, ws, _, _ = exported
    partial = write_deployments(tmp_path / "d.csv", sites=("cam_a",))
    out = _export(ws, tmp_path / "x", deployments=partial)
    assert out.exit_code == 1
    cli_error(out.output, partial, "latitude/longitude", "cam_b, cam_c", "--deployments FILE",
              "--drop-sites-without-coordinates")
    dropped = _export(ws, tmp_path / "y", "--drop-sites-without-coordinates", deployments=partial)
    assert dropped.exit_code == 0, dropped.output
    assert {m["deploymentID"] for m in _rows(tmp_path / "y" / "media.csv")} == {"cam_a"}
    assert validate_package(tmp_path / "y", tmp_path / "v").valid


def test_classes_without_taxonomy_are_listed(exported, tmp_path):
    _, _, ws, _, deployments = exported
    taxonomy = tmp_path / "taxa.csv"
    taxonomy.write_text("class,observationType,scientificName,taxonRank\nblank,blank,,\n"
                        "chimpanzee,animal,Pan troglodytes,species\n")
    out = _export(ws, tmp_path / "x", "--taxonomy", str(taxonomy), deployments=deployments)
    assert out.exit_code == 1
    cli_error(out.output, taxonomy, "duiker, elephant", "class,observationType,scientificName,taxonRank",
              "--taxonomy FILE")


def test_a_package_needs_a_contributor(exported, tmp_path):
    _, _, ws, _, deployments = exported
    out = runner.invoke(app, ["export", "camtrap-dp", str(tmp_path / "x"), "-w", str(ws.root), "--deployments",
                              str(deployments)])
    assert out.exit_code == 1
    cli_error(out.output, "contributor", '--contributor "Name <email>"', "--metadata")


def test_export_commands_have_help():
    for command in ("camtrap-dp", "megadetector-json", "csv"):
        out = runner.invoke(app, ["export", command, "--help"])
        assert out.exit_code == 0 and "--model" in out.output and "--only-predicted" in out.output
