"""The base of jungle's typed configurations.

Every configuration is a :class:`JungleConfig`: a frozen pydantic model that forbids unknown
fields, is written next to what it made (with the code version), knows its own short key, and
fails as a jungle error: a value out of range or a validator's refusal raises the class's
``error`` (an :class:`~jungle.errors.InputError`) with one line per problem, never a pydantic
``ValidationError`` traceback. This is the one place that conversion happens, for direct
construction (``Config(...)``) and for validation of stored data (``model_validate``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError, JungleError
from .hashing import config_key

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
    """A frozen, strict configuration whose validation failures are jungle errors (``error``) and
    whose :meth:`key` is a hash of its :meth:`lineage`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    error: ClassVar[type[InputError]] = InputError

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self).error) from None

    @classmethod
    def model_validate(cls, obj: Any, **options: Any):
        """Validate stored data (a dict) as this configuration; failures as for construction."""
        try:
            return super().model_validate(obj, **options)
        except ValidationError as exc:
            raise config_error(exc, cls.error) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes, **options: Any):
        """Validate a JSON text as this configuration; failures as for construction."""
        try:
            return super().model_validate_json(json_data, **options)
        except ValidationError as exc:
            raise config_error(exc, cls.error) from None

    def lineage(self) -> dict:
        """The settings that change what this configuration makes, as JSON values (what
        :meth:`key` hashes). Every field by default; a configuration whose fields include
        run-time choices that leave results unchanged (batch sizes, threads) leaves them out."""
        return self.model_dump(mode="json")

    def key(self) -> str:
        """The short stable key of :meth:`lineage` (:func:`jungle.hashing.config_key`)."""
        return config_key(self.lineage())
