"""The one progress-bar rule: shown on a terminal's stderr, hidden when stderr is not a terminal
or the command was asked to be quiet."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from jungle.progress import progress_bar

SCRIPT = ("from jungle.progress import progress_bar\n"
          "with progress_bar(3, 'probing', unit='clip', show={show}) as bar:\n"
          "    bar.update(3)\n")


def _stderr_on_a_terminal(show: bool) -> str:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    try:
        subprocess.run([sys.executable, "-c", SCRIPT.format(show=show)], stderr=follower, check=True, timeout=60)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_a_bar_shows_on_a_terminal_unless_quiet():
    shown = _stderr_on_a_terminal(show=True)
    assert "probing" in shown and "3/3" in shown and "clip" in shown
    assert _stderr_on_a_terminal(show=False) == ""


def test_no_bar_when_stderr_is_not_a_terminal():
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(show=True)], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stderr == "" and result.stdout == ""
    with progress_bar(2, "in-process") as bar:  # pytest captures stderr: not a terminal
        bar.update(2)
        assert bar.disable
