"""A plain crop baseline to hold jungle against: lite0 on whole frames and on motion crops, logistic regression.

Per clip, from every decoded frame:

- **whole**: 8 uniformly spaced whole frames;
- **motion**: 8 crops around the moving pixels: the clip's per-pixel median grey frame (at half
  resolution) is the background; each frame's |grey - median| (less its own median, so a global
  light change is not motion) is blurred and thresholded; the 8 frames with the most moving area are cropped to the
  bounding box of their moving pixels, grown by 25% and made square (a frame without motion gives
  the whole frame).

Each image goes through lite0 (the same encoder and backend as ``jungle featurize``); a clip's
features are the mean and the max of its 8 embeddings; **both** concatenates the two. The model
is a multinomial logistic regression on standardised features, its C chosen by 5-fold
cross-validation (log loss) on the training clips only (:func:`fit_predict`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["clip_images", "embed_clips", "fit_predict", "KINDS"]

KINDS = ("whole", "motion", "both")
CS = (0.001, 0.01, 0.1, 1.0)


def _decode(path: Path) -> list:
    """Every decoded frame of the clip (PyAV frames: converted only where needed)."""
    import av

    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _luma(frame) -> np.ndarray:
    """A decoded frame's grey levels: its Y plane as it is for planar YUV, else converted."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p"):
        plane = frame.planes[0]
        return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    return frame.to_ndarray(format="gray")


def _square(box: tuple[int, int, int, int], grow: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) grown by ``grow``, made square and moved inside the frame."""
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0, y1 - y0) * (1 + grow)))
    side = min(max(side, 16), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), 0, width - side))
    top = int(np.clip(round(cy - side / 2), 0, height - side))
    return left, top, left + side, top + side


def motion_boxes(grey: np.ndarray, threshold: float = 20.0, blur: float = 1.0) -> tuple[np.ndarray, list]:
    """Moving area per frame and the bounding box (x0, y0, x1, y1) of each frame's moving pixels (None: none),
    from (frames, H, W) uint8 grey frames, analysed at half resolution (boxes in full-resolution pixels)."""
    import cv2

    half = grey[:, ::2, ::2].astype(np.float32)   # every other pixel: the blur below smooths it
    n = len(half)
    diff = np.abs(half - np.median(half, axis=0))
    diff -= np.median(diff.reshape(n, -1), axis=1)[:, None, None]
    boxes, area = [], np.zeros(n)
    for i, d in enumerate(diff.astype(np.float32)):
        moving = cv2.GaussianBlur(d, (0, 0), blur) > threshold
        ys, xs = np.nonzero(moving)
        area[i] = len(ys)
        boxes.append((2 * xs.min(), 2 * ys.min(), 2 * xs.max() + 2, 2 * ys.max() + 2) if len(ys) else None)
    return area, boxes


def clip_images(path: Path, n: int = 8, size: int = 224, grow: float = 0.25) -> dict[str, np.ndarray]:
    """The ``n`` whole frames and ``n`` motion crops of one clip, (n, size, size, 3) uint8 each."""
    import cv2

    frames = _decode(path)
    area, boxes = motion_boxes(np.stack([_luma(f) for f in frames]))
    height, width = frames[0].height, frames[0].width
    crops = []
    for i in np.argsort(-area, kind="stable")[:n]:
        x0, y0, x1, y1 = _square(boxes[i], grow, width, height) if boxes[i] else (0, 0, width, height)
        image = frames[i].to_ndarray(format="rgb24")
        crops.append(cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA))
    while len(crops) < n:   # a clip shorter than n frames
        crops.append(crops[-1])
    whole = [frames[i].to_ndarray(format="rgb24") for i in np.linspace(0, len(frames) - 1, n).round().astype(int)]
    resized = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in whole])
    return {"whole": resized, "motion": np.stack(crops)}


def _encoder():
    from jungle.features.models.backends import choose_backend, load_fastest
    from jungle.features.models.encoders import EncoderConfig, load_encoder

    return load_fastest(load_encoder(EncoderConfig(name="lite0")), choose_backend(None))


def embed_clips(paths: list[Path], cache: Path, n: int = 8, progress: Callable[[str], None] | None = None
                ) -> dict[str, np.ndarray]:
    """Mean+max lite0 features of every clip for ``whole`` and ``motion`` ((clips, 2 x 1280) each), kept in
    ``cache`` (an .npz; reused when it holds the same clips)."""
    names = np.array([str(p) for p in paths])
    if cache.exists():
        with np.load(cache) as stored:
            if np.array_equal(stored["paths"], names):
                return {k: stored[k] for k in ("whole", "motion")}
    encoder = _encoder()
    out = {k: np.zeros((len(paths), 2 * 1280), np.float32) for k in ("whole", "motion")}
    started = time.monotonic()
    for i, path in enumerate(paths):
        images = clip_images(path, n)
        embedded = encoder.encode(np.concatenate([images["whole"], images["motion"]]))["embedding"]
        for k, part in (("whole", embedded[:n]), ("motion", embedded[n:])):
            out[k][i] = np.concatenate([part.mean(axis=0), part.max(axis=0)])
        if progress and (i + 1) % 100 == 0:
            progress(f"baseline: {i + 1}/{len(paths)} clips in {time.monotonic() - started:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=names, **out)
    return out


def fit_predict(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, n_classes: int,
                seed: int = 0) -> tuple[np.ndarray, float]:
    """Test probabilities (clips, n_classes) of the logistic regression, and the C cross-validation chose.

    ``y_train`` holds class indices; classes absent from training get probability 0 (the caller clips).
    The standardised features are rotated onto the span of the training clips (a PCA keeping every
    component, fitted on them): an L2-penalised linear model's weights lie in that span, so the fit
    and its predictions are the same, on a few hundred columns instead of thousands. Newton-CG:
    measured 2-5x faster than L-BFGS here.
    """
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(y_train)[np.unique(y_train)].min())
    folds = StratifiedKFold(int(np.clip(smallest, 2, 5)), shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), PCA(n_components=min(X_train.shape), random_state=seed),
                          LogisticRegressionCV(Cs=list(CS), cv=folds, scoring="neg_log_loss", l1_ratios=(0.0,),
                                               solver="newton-cg", use_legacy_attributes=False, max_iter=1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "the least populated class has only k members"
        model.fit(X_train, y_train)
        P = np.zeros((len(X_test), n_classes))
        P[:, model.classes_] = model.predict_proba(X_test)
    return P, float(model[-1].C_)
