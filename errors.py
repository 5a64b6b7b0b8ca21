"""Every error jungle raises on purpose derives from :class:`JungleError`.

The message of a ``JungleError`` says what failed, for which file, and what to do; the command
line prints it as one line and exits non-zero. Anything else that escapes is a bug and shows its
traceback. The subclasses say what kind of failure it is, so a caller can react to a kind
(``except WorkspaceError``) without knowing every module's own class.

The kinds also derive from the built-in exception that older callers caught (``ValueError`` for
bad input, ``LookupError`` for something missing, ``RuntimeError`` otherwise), so code written
against those keeps working; new code catches the jungle kinds.
"""

from __future__ import annotations


class JungleError(Exception):
    """Base of every exception jungle defines. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class InputError(JungleError, ValueError):
    """A file or option the user gave is invalid: a label file, a video list, a config value."""


class NotFoundError(JungleError, LookupError):
    """Something named does not exist: a feature set, a model, a video, a class."""


class WorkspaceError(JungleError, RuntimeError):
    """The workspace cannot be used as asked: missing, locked, read-only, or its disk is full."""


class BusyError(WorkspaceError):
    """Another process holds what this one needs; waiting or retrying later helps."""


class ModelError(JungleError, RuntimeError):
    """A model, encoder or weights file is unusable: damaged, from elsewhere, or mismatched."""


class MediaError(JungleError, RuntimeError):
    """A video or image file cannot be read."""


class EnvironmentProblem(JungleError, RuntimeError):
    """Something outside jungle is missing or refused: a package, a scheduler, a port."""


class Interrupted(JungleError):
    """The user stopped a run (Ctrl-C); what was finished is kept and the same command resumes."""

    exit_code = 130
