"""The configuration base: one key formula, validation errors as one jungle error, stored keys
that stay what they were, and command-line defaults that match the configurations'."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
from typer.testing import CliRunner

import jungle
from jungle.cli import app
from jungle.config import JungleConfig
from jungle.demo.config import DemoConfig
from jungle.demo.generate import make_demo
from jungle.demo.run import DemoRunConfig
from jungle.errors import InputError
from jungle.export.megadetector import MegadetectorConfig
from jungle.features.aggregates.attention import AttentionConfig
from jungle.features.aggregates.frame_head import FrameHeadConfig
from jungle.features.aggregates.metadata import MetadataConfig
from jungle.features.aggregates.oof import TrainingConfig
from jungle.hashing import config_key, text_sha256
from jungle.meta.stack import StackConfig


def _every_config() -> list[type[JungleConfig]]:
    """Every configuration class the package defines (after importing every module)."""
    for module in pkgutil.walk_packages(jungle.__path__, "jungle."):
        importlib.import_module(module.name)
    found, todo = [], [JungleConfig]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return sorted(set(found), key=lambda c: c.__qualname__)


def test_the_key_is_the_hash_of_the_lineage_as_json():
    config = StackConfig(recipe="all", pca=8)
    assert config.key() == config_key(config.model_dump(mode="json"))
    assert config.key() != StackConfig(recipe="all", pca=9).key()


@pytest.mark.parametrize("config", [
    MetadataConfig(neighbours=3, window=7),
    TrainingConfig(dropout=0.3, epochs=2, lr=0.01, unlabelled="fold_mean", embedding="stages"),
    FrameHeadConfig(training="mil-lse", pseudo_threshold=0.9, detector="megadetector_lite", hidden=0),
    AttentionConfig(recurrent=True, with_meta=False, hidden=64),
], ids=lambda c: type(c).__name__)
def test_configs_that_hashed_the_python_dump_keep_their_keys(config):
    # These hashed model_dump() before the base's model_dump(mode="json"); their fields are JSON values
    # either way, so every key they made is still the same.
    assert config.key() == config_key(config.model_dump())


def test_every_default_config_dumps_to_the_same_json_either_way():
    """The base hashes model_dump(mode="json"); for every configuration the package defines, the
    Python dump says the same in JSON (what registry keys of feature sets were made from)."""
    checked = 0
    for cls in _every_config():
        try:
            config = cls()
        except InputError:
            continue  # required fields (a directory, a sampling's kind): no default to compare
        python = json.dumps(config.model_dump(), sort_keys=True, default=str)
        assert python == json.dumps(config.model_dump(mode="json"), sort_keys=True), cls.__qualname__
        checked += 1
    assert checked >= 15


def test_validation_failures_are_input_errors_whichever_way_a_config_is_made():
    with pytest.raises(InputError, match="min_conf: Input should be less than or equal to 1"):
        MegadetectorConfig(min_conf=1.5)
    with pytest.raises(InputError, match="min_conf"):
        MegadetectorConfig.model_validate({"min_conf": 1.5})
    with pytest.raises(InputError, match="surprise: Extra inputs are not permitted"):
        MegadetectorConfig.model_validate_json('{"surprise": 1}')
    with pytest.raises(InputError, match="fps must be between 2 and 60"):
        DemoConfig.model_validate({"fps": 1})


def test_a_bad_option_prints_one_line_not_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["export", "megadetector-json", str(tmp_path / "out.json"),
                                      "--min-conf", "1.5", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: min_conf"), result.output
    assert not (tmp_path / "out.json").exists()


def test_a_demo_collection_made_with_the_earlier_key_is_still_recognised(tmp_path):
    config = DemoConfig(seed=5, n_train=12, n_test=2, duration=1.0, fps=6, scale=0.15, n_cameras=2, min_per_class=0)
    made = make_demo(tmp_path / "demo", config)
    manifest = tmp_path / "demo" / "demo.json"
    record = json.loads(manifest.read_text())
    # what demo.json held before the configuration base: the hash of the sorted JSON of the settings
    record["key"] = text_sha256(json.dumps(record["config"], sort_keys=True))[:12]
    assert record["key"] != config.key()
    manifest.write_text(json.dumps(record))
    again = make_demo(tmp_path / "demo", config)
    assert again.written == 0 and again.train_clips == made.train_clips


def _defaults(command: str) -> dict:
    import typer.main

    group = typer.main.get_command(app)
    sub = group.commands["demo"].commands[command]
    return {p.name: p.default for p in sub.params}


def test_demo_options_default_to_the_configurations_defaults():
    make = _defaults("make")
    fields = DemoConfig.model_fields
    for option, field in {"seed": "seed", "n_train": "n_train", "n_test": "n_test", "duration": "duration",
                          "fps": "fps", "scale": "scale", "cameras": "n_cameras",
                          "min_per_class": "min_per_class"}.items():
        assert make[option] == fields[field].default, option
    run = _defaults("run")
    fields = DemoRunConfig.model_fields
    for option in ("n_train", "n_test", "seed", "frames", "trials", "pca"):
        assert run[option] == fields[option].default, option
    assert tuple(run["recipes"].split(",")) == fields["recipes"].default
