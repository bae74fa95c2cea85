"""Recognising login, password and shell prompts at the end of the console stream.

A prompt counts only when it is the last thing the board printed (after escapes
are stripped): a kernel message printed after the prompt hides it, and then the
login code presses Enter for a fresh one instead of typing into the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.model.board import Console

# What login(1), busybox login and PAM print when they refuse a user or a password.
LOGIN_REFUSED = re.compile(
    r"Login incorrect|Authentication failure|Permission denied|incorrect password|Login timed out",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Prompts:
    login: re.Pattern[str]
    password: re.Pattern[str]
    shell: re.Pattern[str]

    @classmethod
    def from_console(cls, console: Console) -> Prompts:
        return cls(
            login=_at_end(console.login_prompt),
            password=_at_end(console.password_prompt),
            shell=_at_end(console.shell_prompt),
        )

    def which(self, tail: str) -> str | None:
        """'password', 'login' or 'shell' when `tail` (escape-free text) ends in that prompt."""
        if self.password.search(tail):
            return "password"
        if self.login.search(tail):
            return "login"
        if self.shell.search(tail):
            return "shell"
        return None


def _at_end(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})$")
