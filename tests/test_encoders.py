"""Encoders: the real pretrained offline default, local weights files, stages, and clear errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from jungle.features.models.encoders import (
    ENCODERS, EncoderConfig, EncoderError, load_encoder, packaged_lite0_weights,
    packaged_lite1_weights, packaged_lite2_weights,
)
from jungle.hashing import file_sha256

torch.set_num_threads(2)
GORILLA = 366  # ImageNet class indices
RED_PANDA = 387  # "lesser panda"
CHEETAH = 293


def _photo(media, name: str, size: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(media / "photos" / name).convert("RGB").resize((size, size), Image.BICUBIC)
    return np.asarray(image)[None]


def test_default_encoder_is_really_pretrained_offline(media):
    encoder = load_encoder(EncoderConfig())
    assert encoder.timm_name == "tf_efficientnet_lite0" and encoder.dims == 1280
    assert encoder.weights_sha256 == file_sha256(packaged_lite0_weights())
    probs = encoder.classify(_photo(media, "gcompris_erase/gorilla.webp", encoder.input_size))[0]
    assert probs.argmax() == GORILLA and probs[GORILLA] > 0.8, probs[GORILLA]
    panda = encoder.classify(_photo(media, "gcompris_erase/red_panda.webp", encoder.input_size))[0]
    assert panda[GORILLA] < 0.01  # it is not just saying "gorilla"
    assert encoder.set_name == "lite0"


@pytest.mark.parametrize("name, weights, size", [
    ("lite1", packaged_lite1_weights, 240), ("lite2", packaged_lite2_weights, 260),
])
def test_larger_packaged_encoders_are_really_pretrained_offline(media, name, weights, size):
    encoder = load_encoder(EncoderConfig(name=name))
    assert (encoder.timm_name, encoder.input_size, encoder.dims) == (f"tf_efficientnet_{name}", size, 1280)
    assert encoder.weights_sha256 == file_sha256(weights()) != file_sha256(packaged_lite0_weights())
    gorilla = encoder.classify(_photo(media, "gcompris_erase/gorilla.webp", size))[0]
    assert gorilla.argmax() == GORILLA and gorilla[GORILLA] > 0.5, gorilla[GORILLA]
    for photo, label in (("red_panda", RED_PANDA), ("cheetah", CHEETAH)):
        other = encoder.classify(_photo(media, f"gcompris_erase/{photo}.webp", size))[0]
        assert other.argmax() == label and other[GORILLA] < 0.01, photo
    assert encoder.set_name == name and name in ENCODERS


@pytest.fixture(scope="module")
def tiny():
    return load_encoder(EncoderConfig(name="resnet10t", input_size=64, stages="all"))


def test_random_init_is_seeded_and_recorded(tiny):
    again = load_encoder(EncoderConfig(name="resnet10t", input_size=64))
    assert tiny.weights == "random-init:seed=0" and again.weights_sha256 == tiny.weights_sha256
    images = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(again.encode(images)["embedding"], tiny.encode(images)["embedding"])


def test_stages_are_pooled_outputs_of_every_stage(tiny):
    assert tiny.stage_dims == (64, 64, 128, 256, 512)  # timm's feature_info channels
    images = np.random.default_rng(1).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    out = tiny.encode(images)
    assert out["embedding"].shape == (2, 512) and out["stages"].shape == (2, sum(tiny.stage_dims))
    # the last stage's pooled output equals the final embedding of a ResNet (global average pool)
    np.testing.assert_allclose(out["stages"][:, -512:], out["embedding"], rtol=1e-4, atol=1e-5)
    assert tiny.output_specs() == {"embedding": ((512,), "float16"), "stages": ((1024,), "float16")}


def test_frames_of_another_size_are_resized_to_the_input(tiny):
    out = tiny.encode(np.zeros((1, 40, 90, 3), np.uint8))
    assert out["embedding"].shape == (1, 512)


def test_local_safetensors_weights_load_and_are_hashed(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(123)
    source = timm.create_model("resnet10t").eval()
    path = tmp_path / "my resnet10t.safetensors"
    save_file(source.state_dict(), str(path))
    encoder = load_encoder(EncoderConfig(name="resnet10t", weights=str(path), input_size=64))
    assert encoder.weights == str(path) and encoder.weights_sha256 == file_sha256(path)
    images = np.random.default_rng(2).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = source.forward_head(source.forward_features(encoder.to_tensor(images)), pre_logits=True)
    np.testing.assert_allclose(encoder.encode(images)["embedding"], expected.numpy(), rtol=1e-4, atol=1e-5)


def test_weights_of_another_architecture_are_refused(tmp_path):
    import timm

    path = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet10t").state_dict(), path)
    with pytest.raises(EncoderError) as caught:
        load_encoder(EncoderConfig(name="mobilenetv3_small_050", weights=str(path)))
    assert f"weights file {path} does not fit timm model mobilenetv3_small_050" in str(caught.value)


@pytest.mark.parametrize("config, message", [
    (EncoderConfig(name="no_such_net"),
     'encoder "no_such_net" is neither a jungle alias (lite0, lite1, lite2) nor a timm model'),
    (EncoderConfig(name="resnet10t", weights="/nonexistent/w.pth"), "weights file /nonexistent/w.pth does not exist"),
    (EncoderConfig(name="resnet10t", stages=(7,)), "stages [7] do not exist: this model has stages 0..4"),
])
def test_bad_encoder_configs_fail_with_a_readable_error(config, message):
    with pytest.raises(EncoderError) as caught:
        load_encoder(config)
    assert message in str(caught.value)


def test_hub_weights_offline_fail_fast_and_point_to_weights_option():
    start = time.perf_counter()
    with pytest.raises(EncoderError) as caught:
        load_encoder(EncoderConfig(name="resnet10t", pretrained=True))
    assert "--weights FILE" in str(caught.value)
    assert time.perf_counter() - start < 15


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine (the GPU path "
                    "runs where one is: float16 autocast, channels-last)")
def test_cuda_encoder_matches_the_cpu_encoder():
    rng = np.random.default_rng(0)
    # Smooth images (upsampled noise), like frames rather than pixel noise.
    small = rng.integers(0, 256, size=(6, 14, 14, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(small, 16, axis=1), 16, axis=2)
    cpu = load_encoder(EncoderConfig(stages="all"), device="cpu")
    gpu = load_encoder(EncoderConfig(stages="all"), device="cuda")
    assert gpu.describe()["precision"] == "float16-autocast" and cpu.describe()["precision"] == "float32"
    a, b = cpu.encode(frames), gpu.encode(frames)
    for key in ("embedding", "stages"):
        assert a[key].shape == b[key].shape and b[key].dtype == np.float32
        cosine = (a[key] * b[key]).sum(1) / np.linalg.norm(a[key], axis=1) / np.linalg.norm(b[key], axis=1)
        assert cosine.min() > 0.995, (key, cosine)
    assert (cpu.classify(frames).argmax(1) == gpu.classify(frames).argmax(1)).mean() >= 5 / 6
