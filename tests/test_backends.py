"""Inference backends: OpenVINO / ONNX Runtime against PyTorch on real frames, lineage per backend and
precision, the refusal of a mismatching model, the CPU default, and bit-identical resume within a backend.

Exports go to one weights cache per test module (``JUNGLE_WEIGHTS_DIR``), so each encoder
configuration is exported once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from typer.testing import CliRunner

from jungle.cli import app
from jungle.features.featurize.config import FeaturizeConfig
from jungle.features.featurize.decode_pool import decode_video
from jungle.features.featurize.runner import featurize
from jungle.features.models import backends
from jungle.features.models.backends import (
    BackendError, BackendMismatch, accelerate, choose_backend, embedding_cosine, export_dir, installed_backends,
    load_fastest,
)
from jungle.features.models.encoders import EncoderConfig, load_encoder
from jungle.features.video.sampling import parse_sampling
from jungle.store import registry
from jungle.store.db import connect
from jungle.store.workspace import Workspace

from _features_helpers import ZAMBA, add_videos

torch.set_num_threads(2)
CLIPS = [ZAMBA / "benjamin/04250002.MP4",  # tests/media: real clips in three codecs (H.264, MPEG-4, MS-MPEG4)
         ZAMBA / "savanna/Gorongosa_Mozambique/2017 Videos/F13_Cam027/Baboon/07120049.AVI",
         ZAMBA / "chimpandsee/Trip_5/card 1.2_location/PICT0074.ASF"]
ACCELERATED = [name for name in installed_backends() if name != "torch"]
TINY = EncoderConfig(name="resnet10t", input_size=64, stages="all")  # a bring-your-own timm model


@pytest.fixture(scope="module", autouse=True)
def export_cache(tmp_path_factory):
    """One weights cache for this module's exports (set for in-process runs and CLI subprocesses; undone
    after the module, so that later modules find the real weights cache)."""
    cache = tmp_path_factory.mktemp("weights")
    patch = pytest.MonkeyPatch()
    patch.setenv("JUNGLE_WEIGHTS_DIR", str(cache))
    yield cache
    patch.undo()


@pytest.fixture(scope="session")
def lite0():
    return load_encoder(EncoderConfig())


@pytest.fixture(scope="session")
def tiny():
    return load_encoder(TINY)


def _real_frames(media, size: int, per_clip: int = 4) -> np.ndarray:
    sampling = parse_sampling(f"uniform:{per_clip}")
    return np.concatenate([decode_video(str(media / clip), sampling, (size, size)).images for clip in CLIPS])


def _workspace(tmp_path, media) -> Workspace:
    workspace = Workspace.resolve(tmp_path / "ws")
    add_videos(workspace, [media / clip for clip in CLIPS])
    return workspace


def _config(**options) -> FeaturizeConfig:
    return FeaturizeConfig(encoders=(TINY,), frames="uniform:4", block=1, batch_size=6, torch_threads=2,
                           workers=0, boxes=None, crops=None, **options)


def test_backends_are_installed_and_the_cpu_default_is_the_fastest():
    assert ACCELERATED == ["openvino", "onnxruntime"]  # pyproject: openvino by default, the rest in [backends]
    assert choose_backend(None, "cpu") == ["openvino", "onnxruntime", "torch"]
    assert choose_backend(None, "cuda") == ["torch"]
    assert choose_backend("onnxruntime") == ["onnxruntime"]
    with pytest.raises(BackendError, match='"tensorrt".* openvino, onnxruntime, torch'):
        choose_backend("tensorrt")
    with pytest.raises(BackendError, match="--backend openvino runs on the CPU only"):
        choose_backend("openvino", "cuda")


@pytest.mark.parametrize("backend", ACCELERATED)
def test_fp32_backend_matches_pytorch_on_real_frames(media, lite0, backend):
    frames = _real_frames(media, lite0.input_size)
    model = accelerate(lite0, backend)
    ours, theirs = model.encode(frames)["embedding"], lite0.encode(frames)["embedding"]
    assert ours.shape == theirs.shape == (12, 1280)
    assert embedding_cosine(theirs, ours) >= 0.999
    assert model.cosine >= 0.999 and model.model_path.is_file()
    record = model.model_path.parent / f"verified-{backend}-{model.version}.json"
    assert record.is_file() and f'"cosine": {model.cosine}' in record.read_text()


def test_stage_outputs_match_pytorch(media, tiny):
    frames = _real_frames(media, tiny.input_size)
    model = accelerate(tiny, "openvino")
    ours, theirs = model.encode(frames), tiny.encode(frames)
    assert ours["stages"].shape == theirs["stages"].shape == (12, sum(tiny.stage_dims))
    assert embedding_cosine(theirs["stages"], ours["stages"]) >= 0.999


def test_a_damaged_export_is_refused(tiny, tmp_path):
    model = accelerate(tiny, "onnxruntime", cache=tmp_path)
    data = bytearray(model.model_path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200_000] = bytes(range(256)) * (200_000 // 256) + bytes(200_000 % 256)
    model.model_path.write_bytes(bytes(data))  # the file changed: it is verified again, and fails
    with pytest.raises(BackendMismatch, match=r"onnxruntime .*fp32.* resnet10t: cosine similarity .* < 0.999"):
        accelerate(tiny, "onnxruntime", cache=tmp_path)


def test_an_unmeetable_tolerance_is_refused_and_the_automatic_choice_falls_back(tiny, tmp_path):
    with pytest.raises(BackendMismatch, match="Delete the folder .* or use --backend torch."):
        accelerate(tiny, "openvino", cache=tmp_path, tolerance=1.01)
    notes = []
    chosen = load_fastest(tiny, choose_backend(None), cache=tmp_path, tolerance=1.01, notify=notes.append)
    assert chosen is tiny  # PyTorch itself
    assert len(notes) == 2
    assert notes[0].startswith("note: openvino") and notes[0].endswith("Falling back to onnxruntime.")
    assert notes[1].endswith("Falling back to torch.")
    assert load_fastest(tiny, choose_backend(None), cache=tmp_path).backend == "openvino"


def test_export_is_cached_per_configuration(tiny, lite0):
    assert export_dir(tiny) != export_dir(lite0) != export_dir(lite0, "int8")
    assert export_dir(tiny) == export_dir(load_encoder(TINY))
    assert tiny.weights_sha256[:0] == "" and export_dir(tiny).parent.name == "exports"


@pytest.mark.slow  # exports and an int8 quantisation (~5 s)
def test_lineage_differs_per_backend_and_precision(tmp_path, media):
    workspace = _workspace(tmp_path, media)
    made = {}
    for backend in ("torch", "openvino", "onnxruntime", None):
        summary = featurize(workspace, _config(backend=backend), progress=False)
        made[backend] = (summary.sets[0].version, summary.sets[0].created)
    int8 = featurize(workspace, _config(backend="openvino", precision="int8"), progress=False)
    assert made == {"torch": (1, True), "openvino": (2, True), "onnxruntime": (3, True), None: (2, False)}
    assert (int8.sets[0].version, int8.sets[0].created) == (4, True)
    with connect(workspace, read_only=True) as con:
        models = {v: registry.get(con, "resnet10t", v).config["model"] for v in (1, 2, 3, 4)}
        keys = {registry.get(con, "resnet10t", v).config_key for v in (1, 2, 3, 4)}
    assert len(keys) == 4 and "backend" not in models[1]
    assert (models[2]["backend"], models[2]["backend_version"], models[2]["precision"]) == (
        "openvino", backends.backend_version("openvino"), "float32")
    assert models[3]["backend"] == "onnxruntime"
    calibration = models[4]["calibration"]
    assert models[4]["precision"] == "int8" and calibration["seed"] == 0 and calibration["sampling"] == "uniform:8"
    assert calibration["frames"] == 24 and len(calibration["video_ids_sha256"]) == 64  # 3 videos x 8 frames


def test_resume_within_a_backend_is_bit_identical(tmp_path, media):
    whole = _workspace(tmp_path / "a", media)
    featurize(whole, _config(backend="openvino"), progress=False)
    resumed = _workspace(tmp_path / "b", media)
    first = featurize(resumed, _config(backend="openvino"), shard="1/2", progress=False)
    assert not first.sets[0].complete
    rest = featurize(resumed, _config(backend="openvino"), progress=False)  # does the blocks shard 1 left
    assert rest.sets[0].complete and rest.sets[0].processed == 1
    for name in ("embedding", "stages", "valid", "frame_index"):
        ours = zarr.open_group(str(resumed.root / "features.zarr/resnet10t/v1"), mode="r")[name][:]
        theirs = zarr.open_group(str(whole.root / "features.zarr/resnet10t/v1"), mode="r")[name][:]
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


@pytest.mark.slow  # exports through the CLI (~3 s)
def test_cli_takes_backend_and_precision(tmp_path, media):
    workspace = _workspace(tmp_path, media)
    runner = CliRunner()
    helped = runner.invoke(app, ["featurize", "--help"], env={"COLUMNS": "200"})
    assert "--backend" in helped.output and "--precision" in helped.output
    args = ["featurize", "-w", str(workspace.root), "--encoder", "resnet10t", "--input-size", "64",
            "--frames", "uniform:4", "--no-crops", "--no-detector", "-q", "-f", "csv"]
    done = runner.invoke(app, [*args, "--backend", "onnxruntime"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("feature_set,version,rows,processed,errors,frames,status\n"
                                  "resnet10t,1,3,3,0,12,complete")
    bad = runner.invoke(app, [*args, "--backend", "tensorrt"])
    assert bad.exit_code != 0 and "backend" in bad.output
