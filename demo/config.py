"""The demo collection's configuration: a frozen, typed description of what ``make_demo`` writes.

Everything the generator draws follows from a :class:`DemoConfig`: the same configuration gives
the same label files, the same decoded frames and (x264 runs single-threaded, without MB-tree,
with fixed options: ``generate.X264_OPTIONS``) the same video bytes.
"""

from __future__ import annotations

from pydantic import model_validator

from ..classes import PRIMATRIX_CLASSES
from ..config import JungleConfig
from ..errors import InputError

__all__ = ["DemoConfig", "PRIMATRIX_FREQUENCIES", "REAL_RESOLUTIONS"]

#: Approximate share of each class in the Pri-matrix training labels (rounded, relative weights):
#: blank ~61%, then duiker, other (primate), human, chimpanzee, ..., down to a few videos for
#: reptile and lion. The demo keeps this order and the blank share; rare classes get a floor
#: (``DemoConfig.min_per_class``) so that folds can be made.
PRIMATRIX_FREQUENCIES: tuple[tuple[str, float], ...] = (
    ("blank", 0.61), ("duiker", 0.12), ("other (primate)", 0.10), ("human", 0.095),
    ("chimpanzee", 0.025), ("rodent", 0.0145), ("bird", 0.010), ("other (non-primate)", 0.0095),
    ("hog", 0.0069), ("elephant", 0.0054), ("porcupine", 0.0028), ("cattle", 0.0019),
    ("small antelope", 0.0014), ("large ungulate", 0.0011), ("leopard", 0.0010),
    ("gorilla", 0.0009), ("hippopotamus", 0.0008), ("small cat", 0.0004), ("pangolin", 0.0003),
    ("wild dog", 0.0001), ("hyena", 0.00006), ("forest buffalo", 0.00005), ("reptile", 0.00004),
    ("lion", 0.00001),
)

#: The frame sizes (width, height) of the real Pri-matrix cameras; cameras are scaled from these.
REAL_RESOLUTIONS: tuple[tuple[int, int], ...] = ((720, 404), (720, 480), (960, 540))


class DemoConfig(JungleConfig):
    """What the demo collection holds. Frozen; validated on creation; stored in the collection's
    ``demo.json`` (``model_dump(mode="json")``), which is how a collection is recognised again.

    Attributes:
        seed: Seed of every random choice (labels, cameras, drawings, file names).
        n_train: Labelled clips (``train_labels.csv``).
        n_test: Unlabelled clips (``submission_format.csv``; answers in ``test_labels.csv``).
        duration: Clip length in seconds (a few clips are cut short, see ``short_clip_fraction``).
        fps: Frames per second of every clip.
        scale: Frame size as a fraction of the real cameras' sizes (720x404, 720x480, 960x540);
            sizes are rounded to even numbers for H.264.
        n_cameras: Camera sites, each with its own background, resolution and video folder.
        min_per_class: Fewest training clips of every species, so that folds can be made.
        night_fraction: Share of blank clips filmed at night (infrared, grayscale); species have
            their own night shares (leopards mostly at night, humans by day).
        multi_label_fraction: Share of animal clips that show a second species.
        short_clip_fraction: Share of clips shorter than ``duration`` (the camera stopped early).
        site_affinity: How unevenly species are spread over the cameras (0: evenly).
        crf: x264 constant rate factor (higher: smaller files, more compression).
        frequencies: Relative class frequencies (class name, weight); blank must be present.
    """

    seed: int = 0
    n_train: int = 400
    n_test: int = 100
    duration: float = 3.0
    fps: int = 10
    scale: float = 0.25
    n_cameras: int = 6
    min_per_class: int = 3
    night_fraction: float = 0.35
    multi_label_fraction: float = 0.03
    short_clip_fraction: float = 0.05
    site_affinity: float = 0.6
    crf: int = 26
    frequencies: tuple[tuple[str, float], ...] = PRIMATRIX_FREQUENCIES

    @model_validator(mode="after")
    def _consistent(self) -> "DemoConfig":
        problems = []
        if self.n_train < 1 or self.n_test < 0:
            problems.append(f"n_train must be >= 1 and n_test >= 0 (got {self.n_train}, {self.n_test})")
        if not 0.5 <= self.duration <= 60:
            problems.append(f"duration must be between 0.5 and 60 seconds (got {self.duration})")
        if not 2 <= self.fps <= 60:
            problems.append(f"fps must be between 2 and 60 (got {self.fps})")
        if not 0.05 <= self.scale <= 1.0:
            problems.append(f"scale must be between 0.05 and 1 (got {self.scale})")
        if self.n_cameras < 1:
            problems.append(f"n_cameras must be >= 1 (got {self.n_cameras})")
        if self.min_per_class < 0:
            problems.append(f"min_per_class must be >= 0 (got {self.min_per_class})")
        for name in ("night_fraction", "multi_label_fraction", "short_clip_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1 (got {getattr(self, name)})")
        if self.site_affinity < 0:
            problems.append(f"site_affinity must be >= 0 (got {self.site_affinity})")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be between 0 and 51 (got {self.crf})")
        names = [name for name, _ in self.frequencies]
        unknown = sorted(set(names) - set(PRIMATRIX_CLASSES))
        if unknown:
            problems.append(f"frequencies name unknown classes {unknown}; classes are {list(PRIMATRIX_CLASSES)}")
        if "blank" not in names or len(set(names)) != len(names) or len(names) < 2:
            problems.append("frequencies must list 'blank', at least one species, and each class once")
        if any(weight <= 0 for _, weight in self.frequencies):
            problems.append("frequencies must be positive")
        if problems:
            raise InputError("Invalid demo configuration: " + "; ".join(problems) + ".")
        species = len(names) - 1
        needed = self.min_per_class * species
        if needed > self.n_train:
            raise InputError(
                f"Invalid demo configuration: n_train={self.n_train} is too small for min_per_class="
                f"{self.min_per_class} over {species} species (needs at least {needed} clips, and "
                f"about {round(needed / (1 - self.blank_share))} to keep the blank share); raise "
                f"n_train or lower min_per_class.")
        return self

    @property
    def blank_share(self) -> float:
        """The blank clips' share of all clips, from ``frequencies``."""
        weights = dict(self.frequencies)
        return weights["blank"] / sum(weights.values())

    @property
    def frames(self) -> int:
        """Frames in a full-length clip."""
        return max(1, round(self.duration * self.fps))
