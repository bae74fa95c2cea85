"""What can go wrong while talking to a board, split by whose problem it is.

The run engine must tell three things apart, because they lead to different
outcomes (see docs/plan-format.md "Outcomes"):

* the *board* misbehaved while a test ran: a command overran its timeout but
  the shell could be recovered (`CommandTimeout`), or the kernel crashed or the
  board reset (`BoardCrashed`). These are the test's problem: outcome `fail`,
  exit code 1. They are `BoardFault`s.
* the *lab* failed: the console does not answer even after recovery, login is
  refused, the SSH link dropped, the host key is unknown, a power command
  failed, the board never came back from a boot. These are `InfraError`s
  (exit 3, outcome `error`); a run with one is never a pass.
* the user wrote something impossible (a command longer than a console line can
  carry): `UserError`, exit 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import EXIT_TEST_FAILED, HarnessError, InfraError

if TYPE_CHECKING:
    from harness.lab.crashwatch import CrashEvent


class BoardFault(HarnessError):
    """The board, not the lab, misbehaved during a test step: the step fails (exit 1)."""

    exit_code = EXIT_TEST_FAILED


class CommandTimeout(BoardFault):
    """A command overran its timeout; the shell was interrupted and answers again.

    Raised only after recovery succeeded, so the next step can use the same
    session. `output` holds what the command printed before it was stopped.
    If the shell could not be recovered, `ShellUnresponsive` is raised instead.
    """

    def __init__(self, command: str, timeout: float, output: str = "", via: str = "console"):
        self.command = command
        self.timeout = timeout
        self.output = output
        self.via = via
        super().__init__(
            f"command {command!r} did not finish within {timeout:g} s on the {via}; "
            "it was interrupted and the shell answers again"
        )


class BoardCrashed(BoardFault):
    """The console showed a kernel crash or an unexpected reset.

    `event` is the most severe event seen (the first one of that severity);
    `events` all events seen with it, in console order.
    """

    def __init__(
        self, event: CrashEvent, events: list[CrashEvent] | None = None, command: str | None = None
    ):
        self.event = event
        self.events = events or [event]
        self.command = command
        during = f" while running {command!r}" if command else ""
        super().__init__(
            f"board crashed{during}: {event.kind} ({event.description}): {event.line.strip()}"
        )

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def excerpt(self) -> str:
        return self.event.excerpt


class ConsoleError(InfraError):
    """Base of console problems that are the lab's fault."""


class ConsoleLost(ConsoleError):
    """The console connection itself closed (serial server gone, cable pulled)."""


class ShellUnresponsive(ConsoleError):
    """The console shell gave no sign of life, even after Ctrl-C and a fresh marker.

    Typical causes: the board hung, is powered off, or a program took over the
    terminal. `Board.ensure_shell()` is the way back (re-login, then power cycle).
    `output` holds what a command printed before the shell stopped answering (the
    message itself quotes the command, which is not board output).
    """

    def __init__(self, message: str, output: str = ""):
        self.output = output
        super().__init__(message)


class LoginFailed(ConsoleError):
    """The board refused the console login (wrong user or password), or never offered one."""


class LoginTimeout(LoginFailed):
    """No login prompt or shell prompt appeared within the profile's login timeout."""


class SSHError(InfraError):
    """Base of SSH problems that are the lab's fault."""


class SSHConnectFailed(SSHError):
    """Could not open an SSH session (refused, authentication failed, or no answer in time)."""


class SSHLinkLost(SSHError):
    """An open SSH link dropped (board powered off, rebooted, or network gone)."""


class HostKeyRejected(SSHError):
    """The board's SSH host key is unknown or differs from the pinned/known one."""


class PowerFault(InfraError):
    """The power switch command failed."""


class BootFailed(InfraError):
    """The board did not reach a logged-in shell, or did not really reboot, in time."""
