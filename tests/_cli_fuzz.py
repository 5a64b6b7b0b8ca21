"""The command-line fuzzer of tests/test_cli_fuzz.py: every command and option of the Typer app,
each fed a few invalid values of its type.

:func:`cases` walks ``jungle.cli.app`` (sub-apps included) and makes the cases; run as a script
(``python _cli_fuzz.py CASES.json RESULTS.json``) it runs them one after the other in this process
with Typer's CliRunner, each under an alarm, with the address space capped, and writes what each
did: exit code, the last lines of stderr, whether it raised (a traceback) or hung.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
import typing
from pathlib import Path

HUGE = "9" * 20
BAD_INTS = ("-1", "-" + HUGE, HUGE)
BAD_FLOATS = ("-1", "inf", "-inf", "nan", "1e999")
LONG = "x" * 5000
BAD_TEXTS = ("", LONG)
PER_CASE_S = 30


def _walk(command, path: list[str], ctx):
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), path + [name], ctx)
    else:
        yield path, command


def commands():
    """(path, click command) of every command of the app, sub-apps included."""
    import typer
    import typer._click as click

    from jungle.cli import app

    root = typer.main.get_command(app)
    return list(_walk(root, [], click.Context(root)))


def _kind(param) -> str:
    """int, float, text, path or choice: what an option's value is."""
    annotation = param.type_descriptor.annotation
    for arg in typing.get_args(annotation) or (annotation,):
        if arg is type(None):
            continue
        if typing.get_origin(arg) is list:
            arg = typing.get_args(arg)[0]
        if arg is bool:
            return "flag"
        if arg is int:
            return "int"
        if arg is float:
            return "float"
        if isinstance(arg, type) and issubclass(arg, Path):
            return "path"
        if isinstance(arg, type) and issubclass(arg, str) and arg is not str:
            return "choice"
        return "text"
    return "text"


def name_long(path: list[str]) -> str:
    """A value under the CLI's 1,000-character cap but over a file name's 255 bytes, one per command
    (so that a name one command makes, a fold scheme, is not found by the next)."""
    return ("-".join(path) + "-") * (300 // (len("-".join(path)) + 1) + 1)


def bad_values(kind: str, places: dict, path: list[str] = ()) -> list[tuple[str, str]]:
    """(name, value) of the invalid values fed to an option of this kind."""
    if kind == "int":
        return [(f"int{v[:3]}", v) for v in BAD_INTS]
    if kind == "float":
        return [(f"float{v[:4]}", v) for v in BAD_FLOATS]
    if kind == "choice":
        return [("choice", "no-such-choice")]
    if kind == "path":
        return [("empty", ""), ("long", LONG), ("name-long", name_long(path)), ("dev-zero", places["zero"]),
                ("fifo", places["fifo"]), ("folder", places["folder"]), ("missing", places["missing"]),
                ("not-utf8", places["latin1"])]
    return [("empty", ""), ("long", LONG), ("name-long", name_long(path))]


SERIOUS = {"int-1", "int-99", "int999", "float-1", "floatinf", "float-inf", "floatnan", "float1e99", "choice",
           "dev-zero", "fifo", "long"}
"""Values no option may accept: the command must end with one Error: line and a non-zero exit."""


def base_arguments(path: list[str], places: dict) -> dict[str, list[str]]:
    """Valid arguments per command that make it end quickly once its options are checked (a fold
    scheme that does not exist, a port another socket holds, a weights file that is not the one)."""
    ws = ["-w", places["workspace"]]
    port = ["--port", str(places["port"])]
    return {
        "sql": ["SELECT 1", *ws], "status": ws, "ingest": [places["empty"], *ws],
        "labels": [places["labels"], *ws], "times": [places["times"], *ws], "folds": ["3", "--scheme", "fuzz", *ws],
        "featurize": ["--shard", "9/8", *ws], "features list": ws, "features show": ["meta", *ws],
        "aggregate": ["--fold-scheme", "no-such-scheme", *ws],
        "stack": ["--features", "meta,hist_lite0", "--no-build", "--fold-scheme", "no-such-scheme", *ws],
        "predict": ["--videos", "all", *ws], "report": ws,
        "dashboard": [*port, *ws], "review": [*port, *ws],
        "demo make": [places["latin1"]], "demo run": ["--data", places["latin1"], *ws],
        "weights fetch": ["megadetector-lite", "--from", places["bogus_weights"], "--dir", places["weights"]],
        "weights list": ["--dir", places["weights"]],
        "export camtrap-dp": [places["package"], "--model", "no-such-model", *ws],
        "export megadetector-json": [places["mdjson"], *ws],
        "export csv": [places["csv"], "--model", "no-such-model", *ws],
        "models use": ["latest", *ws],
    }.get(" ".join(path), ws)


def deep_arguments(path: list[str], option: str, places: dict) -> list[str] | None:
    """Valid arguments that take a command past the point where ``option`` is used, where the base
    arguments end before it (the zero-shot model's class map; the Camtrap DP options read once the
    model's predictions are), or None."""
    ws = ["-w", places["workspace"]]
    if path == ["predict"] and option == "--class-map":
        return ["--model", "zero-shot", *ws]
    if path == ["export", "camtrap-dp"] and option in PACKAGE_OPTIONS:
        return [places["package"], "--deployments", places["deployments"], "--contributor", "A <a@example.org>",
                "--data-license", "CC0-1.0", "--media-license", "CC0-1.0", "--created", "2026-01-01T00:00:00Z", *ws]
    return None


PACKAGE_OPTIONS = {"--media-root", "--media-base", "--contributor", "--title", "--created"}
"""Camtrap DP options read only once the model's predictions are (the others are checked with the
options or read before the model): fuzzed on a package that is written when they are valid."""


def _with(arguments: list[str], param, value: str) -> list[str]:
    """``arguments`` with ``param`` set to ``value`` (replacing the base value of that option or argument)."""
    out = list(arguments)
    if param.param_type_name == "argument":
        positionals = [i for i, a in enumerate(out)
                       if not a.startswith("-") and (i == 0 or not out[i - 1].startswith("-"))]
        if positionals:
            out[positionals[0]] = value
        else:
            out.insert(0, value)
        return out
    names = set(param.opts) | set(param.secondary_opts)
    for i, a in enumerate(out):
        if a in names and i + 1 < len(out):
            out[i + 1] = value
            return out
    return out + [param.opts[0], value]


def cases(places: dict) -> list[dict]:
    """Every (command, option, invalid value) case."""
    found = []
    for path, command in commands():
        for param in command.params:
            kind = _kind(param)
            if kind == "flag":
                continue
            base = deep_arguments(path, param.opts[0], places) or base_arguments(path, places)
            for name, value in bad_values(kind, places, path):
                if path[0] == "demo" and param.opts[0] in ("directory", "--data") and name in ("folder", "missing"):
                    continue  # a valid place for a new demo collection: it would be made (minutes)
                argv = [*path, *_with(base, param, value)]
                found.append({"id": f"{' '.join(path)} {param.opts[0]} {name}", "argv": argv,
                              "serious": name in SERIOUS and not (name in {"fifo", "dev-zero"} and
                                                                  param.opts[0] in places["outputs"])})
    special = ("dev-zero", "fifo")  # last: a case that blew the memory would spoil those after it
    return sorted(found, key=lambda case: case["id"].endswith(special))


class _Hang(BaseException):
    """The case ran past its alarm."""


def _alarm(signum, frame):
    raise _Hang()


def run(case_list: list[dict]) -> list[dict]:
    from typer.testing import CliRunner

    from jungle.cli import app

    runner = CliRunner()
    signal.signal(signal.SIGALRM, _alarm)
    results = []
    for case in case_list:
        started = time.monotonic()
        signal.alarm(PER_CASE_S)
        try:
            result = runner.invoke(app, case["argv"])
            hung = False
        except _Hang:
            result, hung = None, True
        finally:
            signal.alarm(0)
        out = {"id": case["id"], "serious": case["serious"], "hung": hung, "seconds": time.monotonic() - started}
        if result is not None:
            raised = result.exception is not None and not isinstance(result.exception, SystemExit)
            stderr = result.stderr if not raised else result.stderr + "".join(
                __import__("traceback").format_exception(result.exception))
            lines = stderr.splitlines()
            errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
            out.update(exit_code=result.exit_code, raised=raised, traceback="Traceback" in stderr or raised,
                       stderr=lines[-4:], error_lines=len(errors),
                       # the Error: line ends the output, or only indented details of it follow
                       last_is_error=bool(errors) and all(line.startswith((" ", "\t"))
                                                          for line in lines[errors[-1] + 1:]))
        results.append(out)
    return results


if __name__ == "__main__":
    limit = 8 * 2**30  # with MALLOC_ARENA_MAX=2 the loaded libraries reserve ~4 GiB of address space
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    todo = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(todo)))
