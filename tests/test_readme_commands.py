"""Every `jungle ...` command line in README.md is one the CLI takes, and every `--help` fits a terminal.

The README's shell blocks (```bash, ```sh, ```console and untagged ones) are read line by line
(``\\`` continuations joined, ``# comments`` and a leading ``$`` dropped, chains split at ``&&``,
``;`` and ``|``). Each ``jungle`` command is parsed by the CLI's own parser, as the command would
parse it, without running anything: the command and subcommand must exist, every option must be
one the command has, and every value must convert (a number where a number goes, a choice among
the choices). Usage lines written with ``[optional parts]`` and ``a | b`` alternatives are checked
with none of the optional parts, with all of them, and with each alternative.

The help test walks every command and checks its ``--help`` at 80 columns: no line longer, nothing
cut (``…``), booleans shown as flags (``--flag`` or ``--flag / --no-flag``, never ``<bool>``), and
no option help with a word too long to wrap in the help column.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jungle.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", ";", "|"}
HELP_COLUMN = 44  # characters of the help column at 80 columns, less a margin


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each line inside a shell block, continuations joined."""
    out, language, joined, start = [], None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language not in SHELL_BLOCKS:
            continue
        if not joined:
            start = number
        joined += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            out.append((start, joined))
            joined = ""
    return out


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line.lstrip("$ "), posix=True, punctuation_chars="|&;[]")
    lexer.commenters = "#"
    lexer.whitespace_split = True
    return list(lexer)


def _segments(tokens: list[str]) -> list[list[str]]:
    """The commands of a chain: split at &&, ||, ; and | outside [...] groups."""
    segments, current, depth = [], [], 0
    for token in tokens:
        depth += token.count("[") - token.count("]")
        if depth == 0 and token in SEPARATORS:
            segments.append(current)
            current = []
        else:
            current.append(token)
    return segments + [current]


def _group(tokens: list[str], start: int) -> tuple[list[list[str]], int]:
    """The alternatives of the [...] group opening at ``start`` (nested groups kept), and its end."""
    alternatives, current, depth, i = [], [], 0, start + 1
    while i < len(tokens):
        token = tokens[i]
        if token == "[":
            depth += 1
        elif token == "]":
            if depth == 0:
                return alternatives + [current], i
            depth -= 1
        elif token == "|" and depth == 0:
            alternatives.append(current)
            current = []
            i += 1
            continue
        current.append(token)
        i += 1
    raise AssertionError(f"unclosed [ in {' '.join(tokens)}")


def _variants(tokens: list[str]) -> list[list[str]]:
    """The command without its optional groups, with all of them (first alternatives), and with each
    other alternative of each group."""
    plain, groups, i = [], [], 0
    while i < len(tokens):
        if tokens[i] == "[":
            alternatives, end = _group(tokens, i)
            groups.append((len(plain), alternatives))
            i = end + 1
        else:
            plain.append(tokens[i])
            i += 1

    def build(choice: dict[int, list[str]]) -> list[str]:
        out, at = [], 0
        for position, (where, _) in enumerate(groups):
            out += plain[at:where] + choice.get(position, [])
            at = where
        return out + plain[at:]

    variants = [plain, build({k: alts[0] for k, (_, alts) in enumerate(groups)})]
    for k, (_, alts) in enumerate(groups):
        variants += [build({k: alt}) for alt in alts[1:]]
    unique = [list(v) for v in dict.fromkeys(map(tuple, variants))]
    return [v for variant in unique for v in _variants(variant)] if any("[" in v for v in unique) else unique


def readme_commands() -> list[tuple[int, list[str]]]:
    """(README line, argument list after `jungle`) of every jungle command in the README's shell blocks."""
    found = []
    for number, line in _lines(README.read_text()):
        if "jungle" not in line:
            continue
        for segment in _segments(_tokens(line)):
            while segment and re.match(r"^[A-Z_][A-Z0-9_]*=", segment[0]):  # VAR=value jungle ...
                segment = segment[1:]
            if segment[:1] == ["jungle"]:
                found += [(number, variant[1:]) for variant in _variants(segment)]
    return found


def _is(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def parse_problem(args: list[str]) -> str | None:
    """Why the CLI would refuse ``jungle ARGS`` before running it (None: it parses)."""
    command, name, rest = typer.main.get_command(app), "jungle", list(args)
    while getattr(command, "commands", None) and rest and not rest[0].startswith("-"):
        if rest[0] not in command.commands:
            return f"no command {rest[0]!r} in `{name}` (it has {', '.join(command.commands)})"
        name, command, rest = f"{name} {rest[0]}", command.commands[rest[0]], rest[1:]
    if getattr(command, "commands", None) and not rest:
        return None  # a group alone prints its help (or runs its default, like `jungle demo`)
    try:
        command.make_context(name, rest)
    except Exception as exc:  # the CLI's parser raises its own exception classes
        if _is(exc, "Exit") and getattr(exc, "exit_code", 1) == 0:
            return None  # --help
        if _is(exc, "UsageError"):
            return f"`{name}`: {exc.format_message() if hasattr(exc, 'format_message') else exc}"
        raise
    return None


def test_the_readme_shows_jungle_commands():
    commands = readme_commands()
    assert len(commands) > 50, commands
    assert any(args[:2] == ["export", "camtrap-dp"] for _, args in commands)


def test_every_readme_command_exists_with_those_options():
    wrong = [f"README.md:{line}: jungle {' '.join(args)}: {problem}" for line, args in readme_commands()
             if (problem := parse_problem(args))]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("args, problem", [
    (["demo", "--pca", "0"], "No such option"),                  # the option lives on `jungle demo run`
    (["demo", "run", "--pca", "many"], "valid integer"),
    (["predict", "--videos"], "requires an argument"),
    (["modles", "list"], "no command 'modles'"),
    (["export", "csv", "out.csv", "--only-predicted", "true"], "unexpected extra argument"),
])
def test_the_check_refuses_what_the_cli_refuses(args, problem):
    found = parse_problem(args)
    assert found is not None and problem.lower() in found.lower(), found


def test_usage_lines_are_checked_with_and_without_their_optional_parts():
    tokens = _tokens('jungle labels FILE [--classes "a,b,c" | --classes classes.txt] [--allow-missing]')
    assert _variants(_tokens("jungle status")) == [["jungle", "status"]]
    assert _variants(tokens) == [
        ["jungle", "labels", "FILE"],
        ["jungle", "labels", "FILE", "--classes", "a,b,c", "--allow-missing"],
        ["jungle", "labels", "FILE", "--classes", "classes.txt"]]
    assert _segments(_tokens("pip install -e . && jungle demo  # the main job")) == [
        ["pip", "install", "-e", "."], ["jungle", "demo"]]


def _commands(command=None, path=()):
    command = command or typer.main.get_command(app)
    yield list(path), command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_fits_80_columns_and_shows_flags_as_flags():
    runner = CliRunner()
    problems = []
    for path, command in _commands():
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert out.exit_code == 0, (path, out.output)
        for line in out.output.splitlines():
            if len(line) > 80 or "…" in line or "<bool>" in line or (line.endswith("...") and "ARGS]..." not in line):
                problems.append(f"jungle {' '.join(path)} --help: {line!r}")
        for param in command.params:
            long_words = [w for w in (getattr(param, "help", None) or "").split() if len(w) > HELP_COLUMN]
            problems += [f"jungle {' '.join(path)} {param.name}: {w!r} cannot wrap" for w in long_words]
            if getattr(param, "is_flag", False):  # its line names it with no <value> after the names
                lines = [line.strip() for line in out.output.splitlines()
                         if line.strip().split(" ")[0].rstrip(",") in param.opts + param.secondary_opts]
                if not lines or any("<" in line.split("  ")[0] for line in lines):
                    problems.append(f"jungle {' '.join(path)} {param.name}: not shown as a flag in {lines}")
    assert not problems, "\n".join(problems)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def readme_anchors(text: str) -> set[str]:
    """The anchors of the headings outside code blocks."""
    anchors, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6} (.+)$", line)):
            anchors.add(_anchor(heading.group(1)))
    return anchors


def test_every_link_inside_the_readme_reaches_a_heading():
    text = README.read_text(encoding="utf-8")
    anchors = readme_anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) > 20  # the contents list and the cross-references
    broken = sorted({link for link in links if link not in anchors})
    assert not broken, f"README links to headings it does not have: {broken}"


def test_the_anchor_rule_is_githubs():
    featurize = "Featurize: sampled frames → per-frame embeddings"
    assert _anchor(featurize) == "featurize-sampled-frames--per-frame-embeddings"
    assert _anchor("The demo collection: `jungle demo make DIR`") == "the-demo-collection-jungle-demo-make-dir"
    assert "install-and-run" in readme_anchors("## Install and run\n```\n## not a heading\n```\n")
    assert "not-a-heading" not in readme_anchors("```\n## not a heading\n```\n")
