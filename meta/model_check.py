"""Checks of a model folder's files before any native library sees them.

A model folder may come from someone else. XGBoost's JSON loader trusts the tree arrays (an
out-of-range child index, a self-loop or a split index past the feature count crashes the process),
NumPy allocates the shape an ``.npy`` header declares before it reads a byte of data, and a file
name may be a symlink to ``/dev/zero`` or a FIFO that never ends. So every file of a folder is:

* opened without following symlinks and without blocking, and refused unless it is a regular file
  (no symlink, FIFO, device or folder; its plain name keeps it inside the folder);
* read whole, up to a size cap per kind of file (:data:`LIMITS`), into memory: the libraries then
  load those checked bytes, never the path, so the file cannot change between check and load;
* checked for structure: an XGBoost booster tree by tree (array lengths, child indices in range,
  every node reached once from the root, split indices below the feature count, finite values,
  a sane class count, the objective the manifest's label mode needs), an ``.npz`` archive member by
  member from its headers alone (:func:`check_npz`: plain dtypes, shape caps, sizes that match).

Each refusal is one :class:`~jungle.errors.ModelError` line naming the file.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..userfiles import file_kind, read_capped

__all__ = ["LIMITS", "MAX_CLASSES", "MAX_FEATURES", "check_booster", "check_npz", "read_model_file"]

LIMITS = {"manifest": 4 * 2**20, "booster": 256 * 2**20, "projection": 512 * 2**20, "oof": 512 * 2**20,
          "alias": 4096}
"""Most bytes read of each kind of file (a model jungle saves is far smaller)."""

MAX_CLASSES = 10_000
MAX_FEATURES = 10_000_000
MAX_NODES = 1 << 20
"""Most nodes of one tree (depth 20)."""
MAX_NPZ_MEMBERS = 4096
MAX_NPZ_ELEMENTS = 64 * 2**20
"""Most elements of one array of a projection file (512 MiB of float64)."""
MAX_TEXT_CHARS = 4096
_NPZ_KINDS = "fiu"
"""dtype kinds a projection array may have (float, signed, unsigned) besides text ``U``."""

_REMAKE = "Re-make the model with `jungle stack`, or ask whoever sent the folder for the one jungle wrote, unchanged."
_ROOT_PARENT = 2147483647
"""XGBoost's parent of a tree's root."""


def _refuse(path, what: str, kind: str = "model file") -> ModelError:
    return ModelError(f"{kind} {path} {what}. {_REMAKE}")


def read_model_file(folder: Path, name: str, kind: str) -> bytes:
    """The bytes of the regular file ``name`` in ``folder``, at most :data:`LIMITS` ``[kind]``.

    Raises:
        ModelError: the name is not a plain name, the file is missing, a symlink, a FIFO, a device
            or a folder, unreadable, or larger than the cap.
    """
    path = Path(folder) / name
    if Path(name).name != name or name in ("", ".", "..") or "\x00" in name:
        raise _refuse(path, "is not a plain file name inside the model folder")
    limit = LIMITS[kind]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _refuse(path, "is missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "is a symbolic link; a model folder holds regular files only") from None
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, f"is not a regular file ({file_kind(info.st_mode)}); a model folder holds regular "
                                "files only")
        if info.st_size > limit:
            raise _refuse(path, f"is {info.st_size} bytes, more than the {limit} a {kind} file may have")
        data = read_capped(fd, limit)
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _refuse(path, f"is more than the {limit} bytes a {kind} file may have")
    return data


# --------------------------------------------------------------------------- XGBoost JSON
class _Bad(ModelError):
    """One structural problem of a file, said in a few words (the caller names the file)."""


def _int(value, what: str, low: int, high: int) -> int:
    """``value`` (an int, or an int as text as XGBoost writes many) within [low, high]."""
    if isinstance(value, bool):
        raise _Bad(f"{what} is not a whole number")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _Bad(f"{what} {value[:20]!r} is not a whole number") from None
    if not isinstance(value, int):
        raise _Bad(f"{what} is not a whole number")
    if not low <= value <= high:
        raise _Bad(f"{what} {value} is outside {low}..{high}")
    return value


def _ints(tree: dict, key: str, n: int, t: int) -> list[int]:
    values = tree.get(key)
    if not isinstance(values, list) or len(values) != n:
        raise _Bad(f"tree {t}: {key} does not hold one entry per node ({n})")
    if not all(type(v) is int for v in values):
        raise _Bad(f"tree {t}: {key} holds something other than whole numbers")
    return values


def _floats(tree: dict, key: str, n: int, t: int) -> None:
    values = tree.get(key)
    if not isinstance(values, list) or len(values) != n:
        raise _Bad(f"tree {t}: {key} does not hold one entry per node ({n})")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _Bad(f"tree {t}: {key} holds a value that is not a finite number")


def _check_tree(tree, t: int, num_feature: int) -> None:
    """One tree: consistent arrays, a real tree rooted at node 0, splits on existing features."""
    if not isinstance(tree, dict) or not isinstance(tree.get("tree_param"), dict):
        raise _Bad(f"tree {t} is not a tree object")
    param = tree["tree_param"]
    n = _int(param.get("num_nodes"), f"tree {t}: num_nodes", 1, MAX_NODES)
    deleted = _int(param.get("num_deleted", "0"), f"tree {t}: num_deleted", 0, n - 1)
    _int(param.get("num_feature"), f"tree {t}: num_feature", num_feature, num_feature)
    _int(param.get("size_leaf_vector", "1"), f"tree {t}: size_leaf_vector", 0, 1)
    if _int(tree.get("id", t), f"tree {t}: id", 0, 2**31 - 1) != t:
        raise _Bad(f"tree {t} has id {tree.get('id')}")
    left, right = _ints(tree, "left_children", n, t), _ints(tree, "right_children", n, t)
    parents = _ints(tree, "parents", n, t)
    splits = _ints(tree, "split_indices", n, t)
    if any(v not in (0, 1) for v in _ints(tree, "default_left", n, t)):
        raise _Bad(f"tree {t}: default_left holds values other than 0 and 1")
    if any(v != 0 for v in _ints(tree, "split_type", n, t)):
        raise _Bad(f"tree {t} has categorical splits, which jungle's models never have")
    for key in ("split_conditions", "base_weights", "loss_changes", "sum_hessian"):
        _floats(tree, key, n, t)
    for key in ("categories", "categories_nodes", "categories_segments", "categories_sizes"):
        if tree.get(key, []) != []:
            raise _Bad(f"tree {t} has categorical splits, which jungle's models never have")
    if parents[0] not in (_ROOT_PARENT, -1):
        raise _Bad(f"tree {t}: the root has a parent")
    seen = bytearray(n)
    seen[0] = 1
    stack, reached = [0], 1
    while stack:
        node = stack.pop()
        a, b = left[node], right[node]
        if a == -1 and b == -1:
            continue
        if not (0 < a < n and 0 < b < n) or a == b:
            raise _Bad(f"tree {t}: node {node} has children {a} and {b}, not two other nodes of the {n}")
        if not 0 <= splits[node] < num_feature:
            raise _Bad(f"tree {t}: node {node} splits on feature {splits[node]}, but the model has {num_feature}")
        for child in (a, b):
            if seen[child]:
                raise _Bad(f"tree {t}: node {child} is reached twice (a cycle or a shared child)")
            if parents[child] != node:
                raise _Bad(f"tree {t}: node {child}'s parent is {parents[child]}, not {node}")
            seen[child] = 1
            stack.append(child)
            reached += 1
    if reached != n - deleted:
        raise _Bad(f"tree {t}: {n - reached} of its {n} nodes are not reached from the root")
    if any(not 0 <= s < num_feature for s in splits):
        raise _Bad(f"tree {t}: a split index is outside 0..{num_feature - 1}")


def _learner_params(learner: dict) -> tuple[int, int, int]:
    """(num_feature, num_class, num_target) of the learner."""
    params = learner.get("learner_model_param")
    if not isinstance(params, dict):
        raise _Bad("it has no learner_model_param")
    num_feature = _int(params.get("num_feature"), "num_feature", 1, MAX_FEATURES)
    num_class = _int(params.get("num_class", "0"), "num_class", 0, MAX_CLASSES)
    num_target = _int(params.get("num_target", "1"), "num_target", 1, MAX_CLASSES)
    base = params.get("base_score", "0.5")
    if not isinstance(base, str) or len(base) > 64 * MAX_CLASSES:
        raise _Bad("base_score is not text")
    values = [v for v in base.strip().strip("[]").split(",") if v.strip()]
    try:
        if not values or not all(math.isfinite(float(v)) for v in values):
            raise ValueError
    except ValueError:
        raise _Bad("base_score is not a list of finite numbers") from None
    return num_feature, num_class, num_target


def _check_objective(learner: dict, mode: str, classes: int, num_class: int, num_target: int) -> None:
    objective = learner.get("objective")
    name = objective.get("name") if isinstance(objective, dict) else None
    want = "multi:softprob" if mode == "multiclass" else "binary:logistic"
    if name != want:
        raise _Bad(f"its objective is {str(name)[:40]!r}, but a {mode} model needs {want}")
    if mode == "multiclass" and num_class != classes:
        raise _Bad(f"it has num_class {num_class}, but the manifest lists {classes} classes")
    if mode == "binary" and (num_target != classes or num_class not in (0, 1)):
        raise _Bad(f"it has {num_target} targets, but the manifest lists {classes} classes")


def _check_rare(attributes: dict, num_feature: int, classes: int) -> None:
    """jungle's rare-class calibrations: class -> (column, slope, intercept) within range."""
    text = attributes.get("jungle_rare_calibration", "{}")
    if not isinstance(text, str):
        raise _Bad("jungle_rare_calibration is not text")
    try:
        stored = json.loads(text)
    except ValueError:
        raise _Bad("jungle_rare_calibration is not JSON") from None
    if not isinstance(stored, dict):
        raise _Bad("jungle_rare_calibration is not an object")
    for key, value in stored.items():
        _int(key, "a rare-calibration class", 0, classes - 1)
        if not isinstance(value, list) or len(value) != 3:
            raise _Bad("a rare calibration is not [column, slope, intercept]")
        _int(value[0], "a rare-calibration column", 0, num_feature - 1)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value[1:]):
            raise _Bad("a rare calibration's slope or intercept is not a finite number")


def _check_booster_json(doc, mode: str, classes: int) -> int:
    """Every structural check of one XGBoost JSON document; returns num_feature."""
    if not isinstance(doc, dict) or not isinstance(doc.get("learner"), dict):
        raise _Bad("it is not an XGBoost model (no learner)")
    version = doc.get("version")
    if not isinstance(version, list) or len(version) != 3 or not all(type(v) is int for v in version):
        raise _Bad("it has no XGBoost version")
    learner = doc["learner"]
    num_feature, num_class, num_target = _learner_params(learner)
    _check_objective(learner, mode, classes, num_class, num_target)
    names, types = learner.get("feature_names", []), learner.get("feature_types", [])
    for what, values in (("feature_names", names), ("feature_types", types)):
        if not isinstance(values, list) or len(values) not in (0, num_feature) or \
                not all(isinstance(v, str) and len(v) <= MAX_TEXT_CHARS for v in values):
            raise _Bad(f"{what} is not a list of names, one per feature")
    if any(v not in ("q", "float", "int", "i") for v in types):
        raise _Bad("feature_types holds a type other than numeric")
    attributes = learner.get("attributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise _Bad("its attributes are not text")
    _check_rare(attributes, num_feature, classes)
    booster = learner.get("gradient_booster")
    if not isinstance(booster, dict) or booster.get("name") != "gbtree" or not isinstance(booster.get("model"), dict):
        raise _Bad("it is not a gbtree booster (the only kind jungle saves)")
    model = booster["model"]
    trees, info = model.get("trees"), model.get("tree_info")
    if not isinstance(trees, list) or not isinstance(info, list) or len(info) != len(trees):
        raise _Bad("its trees and tree_info do not match")
    param = model.get("gbtree_model_param", {})
    if not isinstance(param, dict) or _int(param.get("num_trees"), "num_trees", 0, 10**8) != len(trees):
        raise _Bad("num_trees does not match its trees")
    _int(param.get("num_parallel_tree", "1"), "num_parallel_tree", 1, 1)
    groups = max(num_class, num_target, 1)
    if not all(type(g) is int and 0 <= g < groups for g in info):
        raise _Bad(f"tree_info names an output outside 0..{groups - 1}")
    indptr = model.get("iteration_indptr", [0, len(trees)] if trees else [0])
    if not isinstance(indptr, list) or not indptr or indptr[0] != 0 or indptr[-1] != len(trees) or \
            not all(type(v) is int for v in indptr) or any(b < a for a, b in zip(indptr, indptr[1:])):
        raise _Bad("iteration_indptr does not split its trees into rounds")
    cats = model.get("cats", {})
    if cats and any(cats.get(k) for k in ("enc", "feature_segments", "sorted_idx")):
        raise _Bad("it holds categorical encodings, which jungle's models never have")
    for t, tree in enumerate(trees):
        _check_tree(tree, t, num_feature)
    return num_feature


def check_booster(raw: bytes, path: Path, mode: str, classes: int) -> int:
    """Check the XGBoost JSON ``raw`` (the file ``path``) of a ``mode`` model of ``classes`` classes
    before XGBoost reads it; return its feature count.

    Raises:
        ModelError: not XGBoost JSON, or a structural problem (named, e.g. the tree and node).
    """
    if path.suffix != ".json":
        raise _refuse(path, "is not an XGBoost JSON file (jungle saves boosters as .json)")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _refuse(path, f"is not valid JSON ({str(exc)[:120]})") from None
    try:
        return _check_booster_json(doc, mode, classes)
    except _Bad as exc:
        raise _refuse(path, f"is not a booster jungle can load safely: {exc}") from None


# --------------------------------------------------------------------------- .npz
class _Pickled(ModelError):
    """A member holds Python objects (pickled)."""
def _npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, tuple, np.dtype]:
    """(name, shape, dtype) of one member, from its header alone; checks that its size fits."""
    name = info.filename
    if not name.endswith(".npy") or "/" in name or "\\" in name or name.startswith("."):
        raise _Bad(f"member {name[:60]!r} is not an array")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=10_000)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=10_000)
        else:
            raise _Bad(f"member {name!r} has an unknown .npy version {version}")
        header = handle.tell() if hasattr(handle, "tell") else None
    if dtype.hasobject:
        raise _Pickled(name)
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _NPZ_KINDS + "U":
        raise _Bad(f"member {name!r} has dtype {dtype}, not plain numbers or text")
    if dtype.kind == "U" and dtype.itemsize > 4 * MAX_TEXT_CHARS:
        raise _Bad(f"member {name!r} holds texts longer than {MAX_TEXT_CHARS} characters")
    if len(shape) > 2 or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _Bad(f"member {name!r} has shape {shape}, not 1 or 2 dimensions")
    elements = math.prod(shape)
    if elements > MAX_NPZ_ELEMENTS:
        raise _Bad(f"member {name!r} declares {elements} elements, more than {MAX_NPZ_ELEMENTS}")
    if header is not None and info.file_size != header + elements * dtype.itemsize:
        raise _Bad(f"member {name!r} declares shape {shape} of {dtype}, which does not fit its {info.file_size} bytes")
    return name[:-4], shape, dtype


def check_npz(raw: bytes, path: Path) -> dict[str, tuple[tuple, np.dtype]]:
    """Check the ``.npz`` archive ``raw`` (the file ``path``) from its headers, allocating nothing
    they declare; return each array's (shape, dtype) by name.

    Raises:
        ModelError: not a zip archive, too many members, a member that is not a plain numeric or
            text array, or one whose declared shape is too large or does not fit its size.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _refuse(path, f"is damaged or not a projection (not an .npz archive: {exc})", "projection file") \
            from None
    with archive:
        members = archive.infolist()
        try:
            if len(members) > MAX_NPZ_MEMBERS:
                raise _Bad(f"it holds {len(members)} members, more than {MAX_NPZ_MEMBERS}")
            total = sum(info.file_size for info in members)
            if total > LIMITS["projection"] * 2:
                raise _Bad(f"its members unpack to {total} bytes")
            if any(info.compress_type != zipfile.ZIP_STORED for info in members):
                raise _Bad("its members are compressed (jungle writes them stored)")
            found = {}
            for info in members:
                name, shape, dtype = _npz_member(archive, info)
                if name in found:
                    raise _Bad(f"member {name!r} appears twice")
                found[name] = (shape, dtype)
            return found
        except _Pickled:
            raise ModelError(f"projection file {path} holds pickled Python objects, which jungle does not load because "
                             "unpickling can run code. Re-make the model with `jungle stack` (with --pca as before).") \
                from None
        except _Bad as exc:
            raise _refuse(path, f"is not a projection jungle can load safely: {exc}", "projection file") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, SyntaxError) as exc:
            raise _refuse(path, f"is damaged or not a projection ({type(exc).__name__}: {str(exc)[:120]})",
                          "projection file") from None
