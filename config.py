"""The base of jungle's typed configurations.

Every stage's configuration is a frozen pydantic model that forbids unknown fields, is written
next to what it made (with the code version), and fails as a jungle error: a value out of range
or a validator's refusal raises the class's ``error`` (an :class:`~jungle.errors.InputError`)
with one line per problem, never a pydantic ``ValidationError`` traceback.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError, JungleError

__all__ = ["JungleConfig", "config_error"]


def config_error(exc: ValidationError, kind: type[InputError] = InputError) -> JungleError:
    """The jungle error for a failed validation: a validator's own jungle error as it was raised,
    else ``kind`` with each bad field and why."""
    for problem in exc.errors():
        original = (problem.get("ctx") or {}).get("error")
        if isinstance(original, JungleError):
            return original
    return kind("; ".join(f"{'.'.join(map(str, p['loc'])) or exc.title}: {p['msg'].removeprefix('Value error, ')}"
                          for p in exc.errors()))


class JungleConfig(BaseModel):
    """A frozen, strict configuration whose validation failures are jungle errors (``error``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    error: ClassVar[type[InputError]] = InputError

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self).error) from None
