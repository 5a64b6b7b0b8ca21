"""How the tests check an error message: the facts a user needs, not the sentence around them.

A message says what failed, for which file or value, and what to do. The tests check those facts
(the path, the value refused, the option or command to use) and the form (one ``Error: `` line, no
traceback), so that rewording a message keeps them passing while dropping a fact fails them.
"""

from __future__ import annotations

__all__ = ["says", "cli_error"]


def says(message: str, *facts: object) -> str:
    """Check that ``message`` names every one of ``facts`` (compared as text); return it."""
    missing = [str(fact) for fact in facts if str(fact) not in message]
    assert not missing, f"the message lacks {missing}: {message!r}"
    return message


def cli_error(output: str, *facts: object) -> str:
    """Check that a failed command printed one line, ``Error: ...``, without a traceback, naming every
    one of ``facts``; return the line."""
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return says(lines[0], *facts)
