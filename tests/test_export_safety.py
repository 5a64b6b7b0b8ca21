"""Exports write valid data or nothing: coordinates, dates and metadata that would break Camtrap DP
are refused in one line naming the file, line and column; a package is written into a temporary
folder and renamed, so a full or read-only disk, or a target that is a file, leaves no partial
package and keeps the earlier one; cells are written exactly, and a note says when some would look
like spreadsheet formulas.

Every case is the real ``jungle`` command in its own process; the full and read-only disks are real
tmpfs mounts (skipped where this process may not mount)."""

from __future__ import annotations

import csv
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from _export_helpers import copy_workspace, validate_package, write_deployments

pytestmark = pytest.mark.slow  # exports through the CLI on tmpfs mounts and real packages: ~3 s a test

CREATED = "2026-12-01T00:00:00Z"


def _jungle(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "jungle.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _camtrap(ws, out, *options) -> subprocess.CompletedProcess:
    return _jungle("export", "camtrap-dp", out, "-w", ws.root, "--created", CREATED,
                   "--contributor", "Ada Lovelace <ada@example.org>", *options)


def _one_line(done: subprocess.CompletedProcess, *facts: str) -> str:
    assert done.returncode != 0 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    for fact in facts:
        assert fact in done.stderr, done.stderr
    return done.stderr


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ws(predicted, tmp_path_factory):
    """A copy of the predicted workspace (sites cam_a, cam_b, cam_c; every video predicted)."""
    _, _, source = predicted
    return copy_workspace(source, tmp_path_factory.mktemp("export-safety") / "ws")


def _deployments(path: Path, rows: list[str], header: str = "site,latitude,longitude") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD = ["cam_a,-1.5,11.2", "cam_b,-1.51,11.22", "cam_c,-1.52,11.24"]


@pytest.mark.parametrize("header, row, facts", [
    ("site,latitude,longitude", "cam_a,200,11.2", ("line 2, latitude: 200 is above the maximum 90",)),
    ("site,latitude,longitude", "cam_a,nan,11.2", ("line 2, latitude: 'nan' is not a number",)),
    ("site,latitude,longitude", "cam_a,-1.5,inf", ("line 2, longitude: 'inf' is not a number",)),
    ("site,latitude,longitude", "cam_a,-1.5,-181", ("line 2, longitude: -181 is below the minimum -180",)),
    ("site,latitude,longitude,coordinateUncertainty", "cam_a,-1.5,11.2,0",
     ("line 2, coordinateUncertainty: 0 is below the minimum 1",)),
    ("site,latitude,longitude,coordinateUncertainty", "cam_a,-1.5,11.2,3.5",
     ("line 2, coordinateUncertainty: '3.5' is not a integer",)),
    ("site,latitude,longitude,deploymentStart", "cam_a,-1.5,11.2,yesterday",
     ("line 2: 'yesterday' is not an ISO 8601 date-time",)),
    ("site,latitude,longitude,deploymentStart,deploymentEnd", "cam_a,-1.5,11.2,2026-03-02T00:00:00Z,2026-03-01",
     ("line 2: deploymentEnd 2026-03-01T00:00:00Z is before deploymentStart",)),
    ("site,latitude,longitude,featureType", "cam_a,-1.5,11.2,volcano", ("line 2, featureType: 'volcano' is not one",)),
    ("site,latitude,longitude", "cam_a,-1.5,11.2,extra", ("line 2 has more cells than the header's 3 columns",)),
])
def test_deployments_that_break_camtrap_dp_are_refused_and_nothing_is_written(ws, tmp_path, header, row, facts):
    deployments = _deployments(tmp_path / "deployments.csv", [row, *GOOD[1:]], header)
    done = _camtrap(ws, tmp_path / "pkg", "--deployments", deployments)
    _one_line(done, str(deployments), *facts)
    assert not (tmp_path / "pkg").exists() and sorted(os.listdir(tmp_path)) == ["deployments.csv"]


@pytest.mark.parametrize("metadata, facts", [
    ('{"resources": [], "profile": "https://example.org/x.json"}', ("sets resources, profile",)),
    ('{"spatial": {"type": "Point", "coordinates": [0, 0]}}', ("sets spatial",)),
    ('{"project": {"samplingDesign": "volcano"}}', ("datapackage.json would break", "project needs")),
    ('{"licenses": [{"name": "CC0-1.0", "scope": "data"}]}', ("licenses must list a license",)),
    ('{"name": "Not A Name"}', ("name must be lower-case",)),
    ('{"contributors": [{"title": "X", "role": "boss"}]}', ("contributors must be a list of objects",)),
    ('{"coordinatePrecision": NaN}', ("NaN is not a JSON number",)),
    ('{"licenses": [{"name": " ", "scope": "data"}, {"name": "=cmd", "scope": "media"}]}',
     ("license name ' ' is not a licence identifier", "license name '=cmd'")),
    ('{"licenses": [{"path": "../x", "scope": "data"}, {"path": "~/y", "scope": "media"}]}',
     ("license path '../x' is not a URL or a relative path",)),
    ('{"contributors": [{"title": "X", "path": "/abs"}]}', ("contributors: path '/abs'",)),
    ('{"contributors": [{"title": "X", "organization": 5}]}', ("organization must be text",)),
    ('{"sources": [{"title": "X", "email": "bad"}]}', ("sources: 'bad' is not an email address",)),
    ("[1, 2]", ("must hold a JSON object",)),
])
def test_metadata_cannot_override_what_jungle_writes_or_break_the_package(ws, tmp_path, metadata, facts):
    path = tmp_path / "metadata.json"
    path.write_text(metadata)
    done = _camtrap(ws, tmp_path / "pkg", "--deployments", write_deployments(tmp_path / "d.csv"), "--metadata", path)
    _one_line(done, *facts)
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("options, facts", [
    (("--data-license", " ", "--media-license", "CC-BY-4.0"), ("data_license: ' ' is not a licence identifier",)),
    (("--data-license", "CC-BY-4.0", "--media-license", "=cmd"), ("media_license: '=cmd' is not a licence",)),
    (("--contributor", "Ada <not-an-email>"), ("contributors: 'not-an-email' is not an email address",)),
    (("--contributor", "Ada <ada@localhost>"), ("contributors: 'ada@localhost' is not an email address",)),
])
def test_licences_and_emails_that_break_the_package_are_refused(ws, tmp_path, options, facts):
    # frictionless rejected each of these packages when jungle wrote them (Data Package's licence
    # name pattern, its email format)
    done = _camtrap(ws, tmp_path / "pkg", "--deployments", write_deployments(tmp_path / "d.csv"), *options)
    _one_line(done, *facts)
    assert not (tmp_path / "pkg").exists()


@pytest.mark.slow
def test_metadata_that_fits_is_merged_and_the_package_validates(ws, tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text('{"licenses": [{"name": "CC0-1.0", "scope": "data"}, {"path": "https://example.org/l.txt", '
                    '"scope": "media"}], "keywords": ["camera trap"], "project": {"acronym": "J"}, '
                    '"sources": [{"title": "S", "email": "a.b+x@mail.example.org", "path": "https://example.org/s"}]}')
    done = _camtrap(ws, tmp_path / "pkg", "--deployments", write_deployments(tmp_path / "d.csv"), "--metadata", path)
    assert done.returncode == 0, done.stderr
    assert validate_package(tmp_path / "pkg", tmp_path / "check").valid


def test_a_target_that_is_a_file_or_holds_other_files_is_refused_untouched(ws, tmp_path):
    deployments = write_deployments(tmp_path / "d.csv")
    target = tmp_path / "target"
    target.write_text("mine")
    _one_line(_camtrap(ws, target, "--deployments", deployments), f"{target} is a file, not a folder")
    assert target.read_text() == "mine"
    target.unlink()
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    _one_line(_camtrap(ws, target, "--deployments", deployments), f"{target} holds other files (notes.txt)")
    assert _tree(target) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}
    folder = tmp_path / "csv-target"
    folder.mkdir()
    _one_line(_jungle("export", "csv", folder, "-w", ws.root), f"{folder} is a folder, not a file")  # before any work


def test_re_export_replaces_the_package_whole(ws, tmp_path):
    deployments = write_deployments(tmp_path / "d.csv")
    assert _camtrap(ws, tmp_path / "pkg", "--deployments", deployments).returncode == 0
    assert _camtrap(ws, tmp_path / "pkg", "--deployments", deployments, "--title", "Second").returncode == 0
    assert "Second" in (tmp_path / "pkg" / "datapackage.json").read_text()
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "pkg"]  # nothing left aside


@pytest.mark.parametrize("what", ["deployments", "metadata"])
@pytest.mark.parametrize("special", ["dev-zero", "fifo", "folder"])
def test_special_files_as_inputs_are_one_line_at_once(ws, tmp_path, what, special):
    path = {"dev-zero": Path("/dev/zero"), "fifo": tmp_path / "fifo", "folder": tmp_path}[special]
    if special == "fifo":
        os.mkfifo(path)
    options = ["--deployments", path] if what == "deployments" else \
        ["--deployments", write_deployments(tmp_path / "d.csv"), "--metadata", path]
    _one_line(_camtrap(ws, tmp_path / "pkg", *options, ), str(path), "not a file")


def test_an_event_gap_of_inf_is_one_line(ws, tmp_path):
    _one_line(_camtrap(ws, tmp_path / "pkg", "--deployments", write_deployments(tmp_path / "d.csv"),
                       "--event-gap", "inf"), "--event-gap")


# --------------------------------------------------------------------------- cells that look like formulas
def test_cells_are_written_exactly_and_formula_lookalikes_are_noted(ws, tmp_path):
    from jungle.store.db import connect

    crafted = copy_workspace(ws, tmp_path / "ws")
    with connect(crafted) as con:
        con.execute("UPDATE videos SET site = '=HYPERLINK(\"http://x\")' WHERE site = 'cam_a'")
    deployments = _deployments(tmp_path / "d.csv", ['"=HYPERLINK(""http://x"")",-1.5,11.2', *GOOD[1:]])
    done = _camtrap(crafted, tmp_path / "pkg", "--deployments", deployments)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    formula = [line for line in notes if "start with =, +, -, @" in line]
    assert len(formula) == 1 and "import the file as text" in formula[0]
    with open(tmp_path / "pkg" / "deployments.csv", newline="") as handle:
        assert '=HYPERLINK("http://x")' in [row["deploymentID"] for row in csv.DictReader(handle)]
    done = _jungle("export", "csv", tmp_path / "wide.csv", "-w", crafted.root)
    assert done.returncode == 0 and "note: " in done.stderr
    assert ',"=HYPERLINK(""http://x"")",' in (tmp_path / "wide.csv").read_text()


# --------------------------------------------------------------------------- full and read-only disks
@pytest.fixture()
def small_disk(tmp_path):
    """A real 600 KiB tmpfs at tmp_path / "disk" (unmounted after the test)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): run as root to test a full disk")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    with open(disk / "fill", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass


def test_a_full_disk_leaves_the_earlier_package_and_no_temporary_files(ws, small_disk, tmp_path):
    deployments = write_deployments(tmp_path / "d.csv")
    assert _camtrap(ws, small_disk / "pkg", "--deployments", deployments).returncode == 0
    before = _tree(small_disk / "pkg")
    _fill(small_disk)
    _one_line(_camtrap(ws, small_disk / "pkg", "--deployments", deployments, "--title", "Second"),
              f"cannot write {small_disk / 'pkg'}: the disk is full", "Nothing was changed")
    _one_line(_jungle("export", "csv", small_disk / "wide.csv", "-w", ws.root),
              f"cannot write {small_disk / 'wide.csv'}: the disk is full")
    assert _tree(small_disk / "pkg") == before
    assert sorted(os.listdir(small_disk)) == ["fill", "pkg"]


def test_a_read_only_disk_is_one_line(ws, small_disk, tmp_path):
    deployments = write_deployments(tmp_path / "d.csv")
    assert _camtrap(ws, small_disk / "pkg", "--deployments", deployments).returncode == 0
    before = _tree(small_disk / "pkg")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    _one_line(_camtrap(ws, small_disk / "pkg", "--deployments", deployments, "--title", "Second"),
              "the file system is read-only")
    _one_line(_jungle("export", "csv", small_disk / "wide.csv", "-w", ws.root), "the file system is read-only")
    assert _tree(small_disk / "pkg") == before


def test_a_fifo_or_device_at_the_csv_target_is_refused_untouched(ws, tmp_path):
    """A FIFO is never opened (no hang) and never replaced, nor a device."""
    target = tmp_path / "wide.csv"
    os.mkfifo(target)
    _one_line(_jungle("export", "csv", target, "-w", ws.root), f"{target} is a FIFO, not a file")
    assert stat.S_ISFIFO(os.stat(target).st_mode) and sorted(os.listdir(tmp_path)) == ["wide.csv"]
