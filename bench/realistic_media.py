"""What the realistic benchmark is made of: camera views and animal photographs in ``../shared/media``.

Only paths, boxes and labels live here; every pixel is read from the media folder at run time.

**Views** (:data:`SITES`): a site is one camera. Its views are real camera-trap stills cut to 16:9
(a still that shows animals is cut where none is: :func:`free_window` keeps out of the boxes in
``avoid``), the empty stretch of a real clip, or the per-pixel median of a low-resolution real clip
(an animal that moves is gone from the median). A grayscale source is an infrared site.

**Photographs** (:data:`PHOTOS`): an animal in a real photograph or clip frame, its box, and the
Pri-matrix class it honestly belongs to. ``group`` names the photograph a cut-out comes from: two
cut-outs of one photograph (two elephants of one herd, three people of one clip) always fall on
the same side of the photo split. What was mapped and why:

- camera-trap stills (zamba's ENA24 subset, ``labels.csv``; google/cameratrapai's test data, named
  by species): Virginia opossum, striped skunk and American black bear -> ``other (non-primate)``
  (mammals with no class of their own), eastern fox squirrel -> ``rodent``, American crow and
  chicken -> ``bird``, grey fox -> ``wild dog`` (a wild canid; zamba's class is
  ``wild_dog_jackal``), ocelot and serval -> ``small cat``, African elephants -> ``elephant``,
  cattle -> ``cattle``, a domestic dog -> ``wild dog`` (a canid; Pri-matrix has no domestic-dog
  class), a zebra -> ``large ungulate``, a person -> ``human``, a chimpanzee -> ``chimpanzee``.
  ENA24's ``6039.jpg`` is labelled chicken but shows a deer: left out (a deer has no honest class).
  The boxes in ENA24's ``md_annotations.json`` and ``coco_annotations.json`` are fixture values
  that do not surround the animals; the boxes here were proposed by MegadetectorLite (score >= 0.17)
  and checked by eye, a few drawn by hand (``596.jpg``, the clip frames).
- real clips: chimpanzees at a waterhole (three cut-outs, one group) and a Goualougo chimpanzee
  (zamba's 90x60 test clip), people on OpenCV's static-camera clip (one group).
- photographs (Wikimedia Commons via gcompris, jigzo, OpenCV, scikit-image): mandrill, macaque,
  gibbon, proboscis monkey -> ``other (primate)``; cheetah -> ``leopard`` (the only spotted big
  cat class); horse, giraffe, camels, rhinoceros -> ``large ungulate``; red panda, meerkats, a
  flying fox -> ``other (non-primate)``; chameleon -> ``reptile``; penguins, heron, swans... ->
  ``bird``. Left out: goat, ibex, alpaca (no honest class), insects, crab, dolphin.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["View", "Site", "Photo", "SITES", "PHOTOS", "free_window", "view_frames", "cutout", "default_media"]

Box = tuple[float, float, float, float]   # x0, y0, x1, y1 as fractions of the source


def default_media() -> Path:
    """``../shared/media`` beside the repository (the repository root is the ``jungle`` package)."""
    return Path(__file__).resolve().parents[2] / "shared" / "media"


@dataclass(frozen=True)
class View:
    """One way a camera sees its scene.

    Attributes:
        source: path under the media folder (a still or a clip).
        avoid: boxes in the source showing animals; the view is cut where none of them is.
        area: part of the source the view may use (leaves out timestamp bars).
        start_s, frames: a clip's empty stretch: ``frames`` frames from ``start_s`` on, looped back and forth.
        median: a clip whose per-pixel median over all frames is the (still) view.
    """

    source: str
    avoid: tuple[Box, ...] = ()
    area: Box = (0.0, 0.06, 1.0, 0.92)
    start_s: float = 0.0
    frames: int = 0
    median: bool = False


@dataclass(frozen=True)
class Site:
    """A camera: its name (the clips' folder) and its views (a clip picks one)."""

    name: str
    views: tuple[View, ...]


@dataclass(frozen=True)
class Photo:
    """An animal: a photograph (or clip ``frame``), its box, its Pri-matrix class, and the photograph it comes from."""

    path: str
    label: str
    box: Box = (0.06, 0.06, 0.94, 0.94)
    frame: int = -1
    group: str = ""

    @property
    def source(self) -> str:
        """The photograph this cut-out comes from (the unit the photo split keeps on one side)."""
        return self.group or self.path

    @property
    def key(self) -> str:
        """Unique name of the cut-out."""
        return self.path if self.frame < 0 and self.box == Photo.box else f"{self.path}@{self.frame}:{self.box}"


_CT = "camera_trap_images/"
_CA = _CT + "cameratrapai_test_data/"
_EN = _CT + "ena24_small/"
_G = "photos/gcompris_erase/"
_ZC = "camera_trap/zamba_test_clips/data/raw/"

#: ENA24 stills: (file, camera, class, box of the animal or None when it is not a usable cut-out,
#: other boxes with animals). Cameras read off the stills' info bars.
_ENA24: tuple[tuple[str, str, str, Box | None, tuple[Box, ...]], ...] = (
    ("2480.jpg", "NRC268", "other (non-primate)", (0.744, 0.443, 0.921, 0.781), ()),
    ("8200.jpg", "NRC268", "bird", (0.0, 0.264, 0.112, 0.512), ()),
    ("2573.jpg", "NRC260", "other (non-primate)", (0.743, 0.493, 0.852, 0.769), ()),
    ("2595.jpg", "NRC249", "", None, ((0.0, 0.563, 0.078, 0.88), (0.524, 0.39, 0.723, 0.549))),
    ("2968.jpg", "Cam11", "other (non-primate)", (0.555, 0.663, 0.65, 0.796), ()),
    ("2999.jpg", "Cam19", "other (non-primate)", (0.616, 0.442, 0.964, 0.778), ()),
    ("3084.jpg", "Cam6", "other (non-primate)", (0.44, 0.768, 0.584, 0.92), ()),
    ("352.jpg", "NRC136", "rodent", (0.325, 0.446, 0.474, 0.633), ()),
    ("596.jpg", "NRC136", "rodent", (0.31, 0.62, 0.70, 0.82), ()),
    ("422.jpg", "NRC39", "rodent", (0.272, 0.64, 0.348, 0.801), ()),
    ("4330.jpg", "NRC148", "", None, ((0.245, 0.802, 0.903, 0.979),)),
    ("4383.jpg", "NRC89", "wild dog", (0.079, 0.43, 0.39, 0.707), ()),
    ("4451.jpg", "PR8", "wild dog", (0.767, 0.635, 0.984, 0.798), ()),
    ("49.jpg", "NRC197", "bird", (0.343, 0.669, 0.57, 0.94), ()),
    ("5840.jpg", "NRC189", "bird", (0.252, 0.626, 0.32, 0.72), ()),
    ("5899.jpg", "NRC189", "bird", (0.509, 0.684, 0.585, 0.845), ()),
    ("6039.jpg", "NRC11", "", None, ((0.006, 0.127, 0.485, 0.893),)),
    ("7951.jpg", "Cam3", "bird", (0.233, 0.464, 0.388, 0.653), ()),
    ("8786.jpg", "NRC63", "other (non-primate)", (0.316, 0.576, 0.398, 0.752), ()),
    ("8831.jpg", "NRC120", "other (non-primate)", (0.347, 0.476, 0.571, 0.695), ()),
    ("9455.jpg", "NRC127", "other (non-primate)", (0.225, 0.352, 0.314, 0.478),
     ((0.266, 0.279, 0.355, 0.374), (0.428, 0.338, 0.488, 0.4))),
)


#: Further animals in ENA24 stills that are not cut out (a white chicken behind the mesh).
_ENA24_MORE: dict[str, tuple[Box, ...]] = {"5899.jpg": ((0.42, 0.42, 0.56, 0.58),)}


def _ena24_sites() -> tuple[Site, ...]:
    cameras: dict[str, list[View]] = {}
    for file, camera, _, box, others in _ENA24:
        cameras.setdefault(camera, []).append(View(_EN + file, avoid=((box,) if box else ()) + others
                                                   + _ENA24_MORE.get(file, ())))
    return tuple(Site(f"ena-{camera.lower()}", tuple(views)) for camera, views in cameras.items())


_ELEPHANTS = ((0.69, 0.46, 0.81, 0.62), (0.83, 0.46, 0.95, 0.63), (0.56, 0.42, 0.63, 0.59), (0.94, 0.46, 1.0, 0.65))
_CATTLE = ((0.375, 0.426, 0.503, 0.597), (0.574, 0.367, 0.659, 0.503), (0.885, 0.482, 0.961, 0.598))

SITES: tuple[Site, ...] = _ena24_sites() + (
    Site("nacti-blank", (View(_CA + "blank.jpg"),)),
    Site("wct-forest", (View(_CA + "blank2.jpg"),)),
    Site("wct-ground", (View(_CA + "blank3.jpg"),)),
    Site("serengeti", (View(_CA + "african_elephants.jpg", avoid=_ELEPHANTS),)),
    Site("nacti-cattle", (View(_CA + "domestic_cattle.jpg", avoid=_CATTLE),)),
    Site("nacti-bear", (View(_CA + "american_black_bear.jpg", avoid=((0.424, 0.428, 0.762, 0.767),)),)),
    Site("forest-person", (View(_CA + "human.jpg", avoid=((0.70, 0.49, 0.78, 0.74),)),)),
    Site("wcs-ocelot", (View(_CA + "ocelot.jpg", avoid=((0.03, 0.52, 0.56, 0.86),)),)),
    Site("chimp-floor", (View(_CT + "chimpanzee_bonobo.jpeg", avoid=((0.30, 0.0, 0.63, 0.76),)),)),
    Site("serval-night", (View(_CT + "small_cat.jpg", avoid=((0.06, 0.56, 0.9, 0.98), (0.0, 0.0, 0.22, 0.16))),)),
    Site("chimpsee-night", (View("camera_trap/ACP0006s6f-small-cat.mp4", area=(0, 0, 1, 1), start_s=10.0,
                                 frames=96),)),
    Site("foliage", (View("other_video/opencv_tree_foliage_hand.avi", area=(0, 0, 1, 1), frames=40),)),
    Site("bwindi", (View(_ZC + "chimpandsee/Bwi_A3/bwi_vid7_806110_9885227_20120911/PICT0146.AVI",
                         area=(0, 0, 1, 1), median=True),)),
    Site("gashaka", (View(_ZC + "chimpandsee/Gas_D4/Gas_Vid20_0786029_0808836_20130725/EK000018.AVI",
                          area=(0, 0, 1, 1), median=True),)),
    Site("korup-night", (View(_ZC + "chimpandsee/Kor_C5/Kor_vid6_0485466_0567428_20141120/EK000019.AVI",
                              area=(0, 0, 1, 1), median=True),)),
    Site("tai-forest", (View(_ZC + "noemie/Videos_All/Taï_T147/Taï_cam170_678016_649215_20161227/02120086.AVI",
                             area=(0, 0, 1, 1), median=True),)),
    Site("tai-night", (View(_ZC + "noemie/Videos_All/Taï_TD4/Taï_cam17_691988_643179_20161119/PICT0026.AVI",
                            area=(0, 0, 1, 1), median=True),)),
)

_WATERHOLE = "camera_trap/chimp_waterhole_320x180.mp4"
_VTEST = "other_video/opencv_vtest_static_cam_people.avi"
_FID31 = _ZC + "goualougo_2013/chimp_MPI_FID_2013/MPI_FID_31_Abel/06-May-2013/FID_31_Abel_2013-5-6_0027.AVI"

PHOTOS: tuple[Photo, ...] = tuple(Photo(_EN + file, label, box) for file, _, label, box, _ in _ENA24 if box) + (
    Photo("photos/jigzo_gorilla.jpg", "gorilla"), Photo(_G + "gorilla.webp", "gorilla"),
    Photo(_CT + "chimpanzee_bonobo.jpeg", "chimpanzee", (0.3, 0.0, 0.62, 0.75)),
    Photo(_WATERHOLE, "chimpanzee", (0.12, 0.05, 0.64, 0.82), frame=56),
    Photo(_WATERHOLE, "chimpanzee", (0.64, 0.08, 1.0, 0.76), frame=84),
    Photo(_WATERHOLE, "chimpanzee", (0.0, 0.12, 0.22, 0.82), frame=28),
    Photo(_FID31, "chimpanzee", (0.1, 0.3, 0.48, 0.96), frame=0),
    Photo("photos/opencv_baboon_mandrill.jpg", "other (primate)"), Photo(_G + "macaque.webp", "other (primate)"),
    Photo(_G + "gibbon.webp", "other (primate)"), Photo(_G + "long_nosed_monkey.webp", "other (primate)"),
    Photo("photos/skimage_chelsea_cat.png", "small cat"), Photo(_G + "kitten.webp", "small cat"),
    Photo(_CT + "small_cat.jpg", "small cat", (0.06, 0.58, 0.88, 0.97)),
    Photo(_CA + "ocelot.jpg", "small cat", (0.03, 0.52, 0.56, 0.86)),
    Photo("photos/opencv_squirrel.jpg", "rodent"), Photo(_G + "squirrel.webp", "rodent"),
    Photo(_G + "pika.webp", "rodent"),
    Photo("photos/jigzo_kookaburra_bird.jpg", "bird"), Photo(_G + "heron.webp", "bird"),
    Photo(_G + "kingfisher.webp", "bird"), Photo(_G + "toucan.webp", "bird"),
    Photo(_G + "northern_harrier.webp", "bird"), Photo(_G + "penguin.webp", "bird"),
    Photo("photos/jigzo_penguin.jpg", "bird"), Photo(_G + "gosling.webp", "bird"), Photo(_G + "swans.webp", "bird"),
    Photo(_G + "spoonbills.webp", "bird"),
    Photo(_CA + "african_elephants.jpg", "elephant", _ELEPHANTS[0]),
    Photo(_CA + "african_elephants.jpg", "elephant", _ELEPHANTS[1]),
    Photo("photos/jigzo_horse.jpg", "large ungulate"), Photo(_G + "horse.webp", "large ungulate"),
    Photo(_G + "giraffe.webp", "large ungulate"), Photo(_G + "camels.webp", "large ungulate"),
    Photo(_G + "rhinoceros.webp", "large ungulate"),
    Photo(_CT + "equid.webp", "large ungulate", (0.338, 0.359, 0.932, 0.761)),
    Photo(_G + "calf.webp", "cattle"),
    Photo(_CA + "domestic_cattle.jpg", "cattle", _CATTLE[0]),
    Photo(_CA + "domestic_cattle.jpg", "cattle", _CATTLE[1]),
    Photo(_G + "cheetah.webp", "leopard"),
    Photo(_CT + "wild_dog_jackal.jpg", "wild dog", (0.38, 0.026, 0.998, 0.824)),
    Photo("photos/opencv_dog_chicky_512.png", "wild dog"),
    Photo(_CA + "domestic_dog.jpg", "wild dog", (0.294, 0.11, 0.772, 0.761)),
    Photo(_CA + "american_black_bear.jpg", "other (non-primate)", (0.424, 0.428, 0.762, 0.767)),
    Photo(_G + "red_panda.webp", "other (non-primate)"), Photo(_G + "meerkats.webp", "other (non-primate)"),
    Photo(_G + "flying_fox.webp", "other (non-primate)"),
    Photo(_G + "chamaeleon.webp", "reptile"),
    Photo(_CA + "human.jpg", "human", (0.705, 0.495, 0.77, 0.74)),
    Photo("photos/skimage_astronaut.png", "human", (0.2, 0.0, 0.85, 1.0)),
    Photo(_VTEST, "human", (0.89, 0.51, 0.975, 0.72), frame=400),
    Photo(_VTEST, "human", (0.345, 0.335, 0.405, 0.505), frame=400),
    Photo(_VTEST, "human", (0.79, 0.45, 0.86, 0.65), frame=200),
)


# --------------------------------------------------------------------------- reading media
def read_rgb(path: Path, frame: int = -1) -> np.ndarray:
    """An image file, or frame ``frame`` of a clip, as RGB uint8 (EXIF rotation applied)."""
    if frame >= 0:
        import av

        with av.open(str(path)) as container:
            for index, decoded in enumerate(container.decode(video=0)):
                if index == frame:
                    return decoded.to_ndarray(format="rgb24")
        raise ValueError(f"{path} has no frame {frame}")
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _clip_frames(path: Path, start_s: float = 0.0, limit: int = 0) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time < start_s:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == limit:
                break
    return frames


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def free_window(size: tuple[int, int], aspect: float, area: Box, avoid: tuple[Box, ...],
                margin: float = 0.02, smallest: float = 0.3) -> Box:
    """The widest ``aspect`` (width/height) window inside ``area`` of a ``size`` (width, height) source
    that overlaps none of the ``avoid`` boxes (grown by ``margin``), as fractions (x0, y0, x1, y1).

    Raises:
        ValueError: no window at least ``smallest`` of the source's width fits.
    """
    width, height = size
    grown = [(b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin) for b in avoid]
    for w in np.arange(area[2] - area[0], smallest - 1e-9, -0.02):
        h = w * width / aspect / height
        if h > area[3] - area[1] + 1e-9:
            continue
        for y0 in np.arange(area[1], area[3] - h + 1e-9, 0.02):
            for x0 in np.arange(area[0], area[2] - w + 1e-9, 0.02):
                window = (float(x0), float(y0), float(x0 + w), float(y0 + h))
                if not any(_overlaps(window, b) for b in grown):
                    return window
    raise ValueError(f"no {aspect:.2f} window of a {width}x{height} source keeps out of {avoid}")


def _cut(image: np.ndarray, window: Box, width: int, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(window[0] * w)), int(round(window[1] * h)),
                      int(round(window[2] * w)), int(round(window[3] * h)))
    part = image[y0:y1, x0:x1]
    shrink = part.shape[1] >= width
    return cv2.resize(part, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@lru_cache(maxsize=16)
def view_frames(view: View, media: Path, width: int, height: int) -> tuple[np.ndarray, int]:
    """The view as (frames, H, W, 3) float32 (one frame for a still or a median) and the width in pixels
    of the source part it shows (a low-resolution camera is rendered at that resolution)."""
    source = media / view.source
    if view.frames or view.median:
        frames = _clip_frames(source, view.start_s, view.frames)
        stills = [np.median(np.stack(frames), axis=0).astype(np.uint8)] if view.median else frames
    else:
        stills = [read_rgb(source)]
    h, w = stills[0].shape[:2]
    window = free_window((w, h), width / height, view.area, view.avoid)
    out = np.stack([_cut(s, window, width, height) for s in stills]).astype(np.float32)
    return out, int(round((window[2] - window[0]) * w))


def is_grayscale(frames: np.ndarray) -> bool:
    """True for an infrared (grayscale) view: the colour channels agree."""
    return float(np.abs(frames[..., 0] - frames[..., 1]).mean() + np.abs(frames[..., 1] - frames[..., 2]).mean()) < 3.0


def _matte(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Foreground weights (h, w) float32 of the animal inside ``box`` (x0, y0, x1, y1 pixels of ``image``).

    GrabCut initialised with the box; when it keeps under 15% or over 97% of the box (infrared
    stills, camouflaged animals), a soft superellipse filling the box stands in (detector boxes are
    tight: the animal touches their sides).
    """
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    keep = np.zeros((h, w), np.float32)
    if min(x1 - x0, y1 - y0) >= 8:
        mask = np.zeros((h, w), np.uint8)
        cv2.setRNGSeed(0)
        cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, (x0, y0, x1 - x0, y1 - y0), np.zeros((1, 65)),
                    np.zeros((1, 65)), 4, cv2.GC_INIT_WITH_RECT)
        keep = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    if 0.15 <= keep[y0:y1, x0:x1].mean() <= 0.97:
        return keep
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs + 0.5 - (x0 + x1) / 2) / max(1.0, (x1 - x0) / 2)
    v = (ys + 0.5 - (y0 + y1) / 2) / max(1.0, (y1 - y0) / 2)
    return (u ** 4 + v ** 4 <= 1.0).astype(np.float32)


def cutout(photo: Photo, media: Path, cache: Path | None = None, longest: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The animal of ``photo`` cut out: (RGB float32 (h, w, 3), alpha float32 (h, w, 1)), at most ``longest`` px.

    The box with a margin of background is cut from the source, shrunk to ``longest`` and matted
    (:func:`_matte`); the matte is feathered. With ``cache`` (a folder), the result is kept there
    (GrabCut takes ~0.5 s).
    """
    import hashlib

    name = hashlib.sha256(f"{photo.key}/{longest}/1".encode()).hexdigest()[:16] + ".npz"
    if cache is not None and (cache / name).exists():
        with np.load(cache / name) as stored:
            return stored["rgb"], stored["alpha"]
    rgb, alpha = _cutout(photo, media, longest)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        part = cache / (name + ".part.npz")
        np.savez(part, rgb=rgb, alpha=alpha)
        part.replace(cache / name)
    return rgb, alpha


def _cutout(photo: Photo, media: Path, longest: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    image = read_rgb(media / photo.path, photo.frame)
    H, W = image.shape[:2]
    pad = 0.15
    bx0, by0, bx1, by1 = photo.box
    bw, bh = bx1 - bx0, by1 - by0
    cx0, cy0 = int(max(0.0, bx0 - pad * bw) * W), int(max(0.0, by0 - pad * bh) * H)
    cx1, cy1 = int(np.ceil(min(1.0, bx1 + pad * bw) * W)), int(np.ceil(min(1.0, by1 + pad * bh) * H))
    image = image[cy0:cy1, cx0:cx1]
    scale = min(1.0, longest / max(image.shape[:2]))
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    box = (int((bx0 * W - cx0) * scale), int((by0 * H - cy0) * scale),
           min(w, int(np.ceil((bx1 * W - cx0) * scale))), min(h, int(np.ceil((by1 * H - cy0) * scale))))
    keep = cv2.GaussianBlur(_matte(image, box), (0, 0), max(0.7, 0.006 * max(h, w)))[..., None]
    rows, cols = np.nonzero(keep[..., 0] > 0.05)
    inside = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return image[inside].astype(np.float32), keep[inside]
