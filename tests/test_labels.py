"""Label import: Pri-matrix wide and long formats, every validation with its message, class lists."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from jungle.classes import PRIMATRIX_CLASSES
from jungle.ingest.labels import LabelsConfig, LabelsError, parse_classes, read_label_file
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _errors import says
from _ingest_helpers import ZAMBA, jungle, zamba_clips

ZAMBA_CLASSES = "antelope_duiker,elephant,gorilla"


@pytest.fixture(scope="module")
def ingested_zamba(media, tmp_path_factory):
    """The 19 zamba clips ingested (headers only) into a workspace; tests work on copies."""
    ws = tmp_path_factory.mktemp("labels") / "ws"
    result = jungle("ingest", media / ZAMBA, "-w", ws, "--no-stats", "-q")
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture()
def ws(ingested_zamba, tmp_path) -> Workspace:
    copy = tmp_path / "ws"
    shutil.copytree(ingested_zamba, copy)
    return Workspace.resolve(copy)


def _write_wide(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _labels(ws) -> dict[str, dict[str, int]]:
    with connect(ws, read_only=True) as con:
        rows = con.execute("SELECT v.filename, l.class, l.value "
                           "FROM labels l JOIN videos v USING (video_id)").fetchall()
    out: dict[str, dict[str, int]] = {}
    for name, cls, value in rows:
        out.setdefault(name, {})[cls] = value
    return out


def test_primatrix_wide_format_with_shuffled_columns(ws, media, tmp_path):
    names = [p.name for p in zamba_clips(media)]
    rng = np.random.default_rng(0)
    columns = list(rng.permutation(PRIMATRIX_CLASSES))
    truth = {name: {c: int(rng.random() < 0.1) for c in PRIMATRIX_CLASSES} for name in names}
    rows = [[name] + [f"{float(truth[name][c]):.1f}" for c in columns] for name in names]  # 0.0 / 1.0 as in Pri-matrix
    result = jungle("labels", _write_wide(tmp_path / "train_labels.csv", ["filename"] + columns, rows), "-w", ws.root,
                    "-f", "csv")
    assert result.exit_code == 0, result.output
    positives = sum(map(sum, (t.values() for t in truth.values())))
    assert result.stdout.splitlines()[1].endswith(f",wide,19,{positives},24,0")
    assert _labels(ws) == truth
    with connect(ws, read_only=True) as con:
        classes = [r[0] for r in con.execute("SELECT class FROM classes ORDER BY position").fetchall()]
        assert classes == list(PRIMATRIX_CLASSES)


def test_long_format_with_configured_classes_through_ingest(media, tmp_path):
    ws = tmp_path / "ws"
    result = jungle("ingest", media / ZAMBA, "-w", ws, "--no-stats", "-q",
                    "--labels", media / ZAMBA / "fixture_labels.csv", "--classes", ZAMBA_CLASSES)
    assert result.exit_code == 0, result.output
    labels = _labels(Workspace.resolve(ws))
    assert len(labels) == 19 and all(sorted(v) == sorted(ZAMBA_CLASSES.split(",")) for v in labels.values())
    assert labels["09190048_Hyena.AVI"] == {"antelope_duiker": 1, "elephant": 0, "gorilla": 0}
    assert sum(v["gorilla"] for v in labels.values()) == 13


def test_unknown_class_is_refused_and_nothing_written(ws, media):
    result = jungle("labels", media / ZAMBA / "fixture_labels.csv", "-w", ws.root)
    assert result.exit_code == 1
    assert result.output.startswith("Error: the label file ")
    assert "unknown classes: 'antelope_duiker' (3 rows: line 2, 3, 20)" in result.output
    assert "set the list with --classes" in result.output
    assert _labels(ws) == {}


def test_wide_file_unknown_and_missing_columns_and_bad_values(ws, tmp_path):
    columns = list(PRIMATRIX_CLASSES[:-1]) + ["unicorn"]  # 'hog' missing, 'unicorn' unknown
    rows = [["EK000059.AVI"] + ["0"] * 23 + ["1"],
            ["PICT0021.ASF", "2", "0.5", "", "yes"] + ["0"] * 20]
    result = jungle("labels", _write_wide(tmp_path / "bad.csv", ["filename"] + columns, rows), "-w", ws.root)
    assert result.exit_code == 1
    assert "unknown classes: column 'unicorn'" in result.output
    assert "class columns missing: 'hog'" in result.output
    assert ("values that are not 0 or 1 (4): '2' for 'bird' (line 3); '0.5' for 'blank' (line 3); "
            "'' for 'cattle' (line 3); 'yes' for 'chimpanzee' (line 3)") in result.output
    assert _labels(ws) == {}


def test_duplicate_rows_in_both_formats(ws, tmp_path):
    wide = _write_wide(tmp_path / "wide.csv", ["filename"] + list(PRIMATRIX_CLASSES),
                       [["EK000059.AVI"] + ["0"] * 24, ["PICT0021.ASF"] + ["0"] * 24, ["EK000059.AVI"] + ["1"] * 24])
    result = jungle("labels", wide, "-w", ws.root)
    assert result.exit_code == 1
    assert "duplicate rows: EK000059.AVI (lines 2 and 4). Keep one row per video." in result.output
    long = _write_wide(tmp_path / "long.csv", ["filepath", "label"],
                       [["EK000059.AVI", "gorilla"], ["EK000059.AVI", "human"], ["EK000059.AVI", "gorilla"]])
    result = jungle("labels", long, "-w", ws.root)
    assert result.exit_code == 1 and "duplicate rows: EK000059.AVI 'gorilla' (lines 2 and 4)" in result.output
    same_video = _write_wide(tmp_path / "same.csv", ["filepath", "label"],
                             [["EK000059.AVI", "gorilla"], ["2015/T37.0314.1632/EK000059.AVI", "human"]])
    result = jungle("labels", same_video, "-w", ws.root)
    assert result.exit_code == 1
    assert "EK000059.AVI and 2015/T37.0314.1632/EK000059.AVI are the same video" in result.output


def test_labels_for_videos_not_ingested(ws, tmp_path):
    long = _write_wide(tmp_path / "long.csv", ["filepath", "label", "split"],
                       [["EK000059.AVI", "gorilla", "train"], ["elsewhere/NOPE.MP4", "human", "train"]])
    refused = jungle("labels", long, "-w", ws.root)
    assert refused.exit_code == 1
    assert ("labels for videos that are not ingested: elsewhere/NOPE.MP4 (line 3). Ingest those videos first, "
            "or pass --allow-missing to skip their labels.") in refused.output
    allowed = jungle("labels", long, "-w", ws.root, "--allow-missing", "-f", "csv")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.splitlines()[1].endswith(",long,1,1,24,1")
    assert _labels(ws)["EK000059.AVI"]["gorilla"] == 1


def test_ambiguous_file_name_needs_a_longer_path(media, tmp_path):
    clip = zamba_clips(media)[0]
    for site in ("site_a", "site_b"):
        (tmp_path / "corpus" / site).mkdir(parents=True)
        (tmp_path / "corpus" / site / "clip.AVI").symlink_to(clip)
    ws = tmp_path / "ws"
    assert jungle("ingest", tmp_path / "corpus", "-w", ws, "--no-stats", "-q").exit_code == 0
    bare = _write_wide(tmp_path / "bare.csv", ["filepath", "label"], [["clip.AVI", "gorilla"]])
    result = jungle("labels", bare, "-w", ws)
    assert result.exit_code == 1 and "keys that match several videos: clip.AVI (line 2, 2 videos)" in result.output
    longer = _write_wide(tmp_path / "longer.csv", ["filepath", "label"], [["corpus/site_b/clip.AVI", "gorilla"]])
    result = jungle("labels", longer, "-w", ws, "-f", "csv")
    assert result.exit_code == 0, result.output
    with connect(Workspace.resolve(ws), read_only=True) as con:
        sites = con.execute("SELECT v.site FROM labels l JOIN videos v USING (video_id) WHERE value = 1").fetchall()
        assert sites == [("site_b",)]


def test_changing_the_class_list_needs_replace(ws, media, tmp_path):
    fixture = media / ZAMBA / "fixture_labels.csv"
    assert jungle("labels", fixture, "-w", ws.root, "--classes", ZAMBA_CLASSES).exit_code == 0
    other = _write_wide(tmp_path / "other.csv", ["filepath", "label"], [["EK000059.AVI", "gorilla"]])
    refused = jungle("labels", other, "-w", ws.root)
    assert refused.exit_code == 1
    assert "the workspace's labels use another class list (antelope_duiker, elephant, gorilla)" in refused.output
    replaced = jungle("labels", other, "-w", ws.root, "--replace-labels")
    assert replaced.exit_code == 0, replaced.output
    assert list(_labels(ws)) == ["EK000059.AVI"] and len(_labels(ws)["EK000059.AVI"]) == 24


def test_class_list_parsing_and_config_errors(tmp_path):
    listing = tmp_path / "classes.txt"
    listing.write_text("other (primate)\nsmall cat\n\n")
    assert parse_classes(listing) == ("other (primate)", "small cat")
    assert parse_classes("a, b ,c") == ("a", "b", "c")
    assert parse_classes(None) == PRIMATRIX_CLASSES
    with pytest.raises(LabelsError, match="more than once"):
        LabelsConfig(path="labels.csv", classes=("a", "a"))
    no_key = _write_wide(tmp_path / "nokey.csv", ["video", "bird"], [["a.mp4", "1"]])
    with pytest.raises(LabelsError, match="no filename/filepath column"):
        read_label_file(no_key)
    result = jungle("labels", no_key, "-w", tmp_path / "none")
    assert result.exit_code == 1 and "No jungle workspace" in result.output


# --------------------------------------------------------------------------- never relabel silently
def test_a_class_column_twice_is_refused_naming_it(ws, tmp_path):
    columns = list(PRIMATRIX_CLASSES) + ["bird"]  # 'bird' is column 2 and column 26
    rows = [["EK000059.AVI"] + ["0"] * 24 + ["1"], ["PICT0021.ASF"] + ["1"] + ["0"] * 24]
    path = _write_wide(tmp_path / "twice.csv", ["filename"] + columns, rows)
    result = jungle("labels", path, "-w", ws.root)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    says(result.output, path, "no labels were imported", "'bird'", "columns 2 and 26", "Keep one column per class")
    assert _labels(ws) == {}


def test_label_or_key_column_twice_is_refused_naming_them(ws, tmp_path):
    path = _write_wide(tmp_path / "long.csv", ["filepath", "label", "split", "Label", "FilePath"],
                       [["EK000059.AVI", "gorilla", "train", "human", "PICT0021.ASF"]])
    result = jungle("labels", path, "-w", ws.root)
    assert result.exit_code == 1
    assert ("duplicated columns (2): 'filepath' (columns 1 and 5); 'label' (columns 2 and 4). Keep one label "
            "column: a video with several labels takes one row per label.") in result.output
    assert _labels(ws) == {}
    ignored_twice = _write_wide(tmp_path / "split.csv", ["filepath", "label", "split", "split"],
                                [["EK000059.AVI", "gorilla", "train", "x"]])  # columns not read may repeat
    assert jungle("labels", ignored_twice, "-w", ws.root).exit_code == 0


def _encoded(path, text: str, encoding: str):
    path.write_bytes(text.encode(encoding))
    return path


def test_tab_and_semicolon_separated_utf16_and_bom_files_are_read(ws, tmp_path):
    names = ["EK000059.AVI", "PICT0021.ASF"]
    wide = {name: [int(i == j) for j in range(24)] for i, name in enumerate(names)}  # bird / blank

    def wide_text(sep: str) -> str:
        lines = [sep.join(["filename", *PRIMATRIX_CLASSES])]
        lines += [sep.join([name, *map(str, wide[name])]) for name in names]
        return "\r\n".join(lines) + "\r\n"

    expected = {name: dict(zip(PRIMATRIX_CLASSES, wide[name])) for name in names}
    excel_unicode_text = _encoded(tmp_path / "excel.txt", wide_text("\t"), "utf-16")  # what Excel writes
    for path in (excel_unicode_text, _encoded(tmp_path / "bom.csv", wide_text(","), "utf-8-sig"),
                 _encoded(tmp_path / "semicolon.csv", wide_text(";"), "utf-8"),
                 _encoded(tmp_path / "u32.csv", wide_text(","), "utf-32")):
        result = jungle("labels", path, "-w", ws.root, "-f", "csv")
        assert result.exit_code == 0, (path.name, result.output)
        assert result.stdout.splitlines()[1] == f"{path},wide,2,2,24,0"
        assert _labels(ws) == expected
    tsv = _encoded(tmp_path / "long.tsv", "filepath\tlabel\tsplit\nEK000059.AVI\tgorilla\ttrain\n", "utf-8")
    assert jungle("labels", tsv, "-w", ws.root).exit_code == 0
    assert _labels(ws)["EK000059.AVI"]["gorilla"] == 1 and _labels(ws)["EK000059.AVI"]["bird"] == 0


def test_files_that_are_not_utf8_text_say_what_to_do(ws, media, tmp_path):
    no_bom = _encoded(tmp_path / "nobom.csv", "filepath,label\nEK000059.AVI,gorilla\n", "utf-16-le")
    latin = _encoded(tmp_path / "latin.csv", "filepath,label\nTa\u00ef_T124/f4636736.avi,gorilla\n", "latin-1")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    video = zamba_clips(media)[0]
    expected = {
        no_bom: f"Error: the label file {no_bom} looks like UTF-16 text without a byte-order mark, which cannot "
                "be read reliably. UTF-16: save it as UTF-8 CSV (in Excel: Save As > 'CSV UTF-8').\n",
        latin: f"Error: the label file {latin} is not UTF-8 text (byte 0xef on line 2; perhaps Latin-1 or "
               "Windows-1252). Save it as UTF-8 CSV (in Excel: Save As > 'CSV UTF-8').\n",
    }
    for path, message in expected.items():
        result = jungle("labels", path, "-w", ws.root)
        assert (result.exit_code, result.output) == (1, message)
    for path in (garbage, video):
        result = jungle("labels", path, "-w", ws.root)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: the label file {path} is not a text file (")
        assert "Give a CSV file: a header line such as `filename,bird,blank,...` or `filepath,label`" in result.output
    assert _labels(ws) == {}


def test_duplicated_columns_through_the_cli_subprocess(ws, tmp_path):
    """The real `jungle` executable: one line on stderr, exit 1, no traceback."""
    import subprocess
    import sys

    path = _write_wide(tmp_path / "long.csv", ["filepath", "label", "label"], [["EK000059.AVI", "gorilla", "human"]])
    done = subprocess.run([sys.executable, "-m", "jungle.cli", "labels", str(path), "-w", str(ws.root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"Error: the label file {path} has problems; no labels were imported:\n"
                                  "  - duplicated columns: 'label' (columns 2 and 3).")
    assert "Traceback" not in done.stderr and _labels(ws) == {}
