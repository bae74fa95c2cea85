"""Why a run stayed queued, and what the user can do about it, in words shown where they look.

A queued run is safe in the outbox, but a reason kept only in an `.error` file
is a reason nobody reads: `harness run`, `harness certify`, `registry submit`
and `registry sync` print it. Each kind of refusal maps to the one action that
fixes it; the text is kept beside the outbox entry as two lines (the reason,
then "what to do: ...") so every front end shows the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, InfraError
from harness.registry.config import ENV_REGISTRY_TOKEN, ENV_REGISTRY_URL, outbox_dir
from harness.registry.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

ADVICE_PREFIX = "what to do: "
_SYNC = "then run `harness registry sync`"
_REENROL = (
    "have the registry admin register this lab again from `harness registry labs self --json` "
    f"on this machine (`harness registry labs add --from-file`), set the new {ENV_REGISTRY_TOKEN}, "
    + _SYNC
)


@dataclass(frozen=True)
class Problem:
    reason: str
    what_to_do: str

    def text(self) -> str:
        return f"{self.reason}\n{ADVICE_PREFIX}{self.what_to_do}"

    @classmethod
    def parse(cls, text: str) -> Problem:
        reason, _, advice = text.strip().partition("\n" + ADVICE_PREFIX)
        return cls(reason.strip(), advice.strip())


def advice_for(exc: HarnessError) -> str:
    """The action that clears this delivery problem."""
    message = str(exc)
    if isinstance(exc, Unauthorized):
        return (
            f"the registry does not accept {ENV_REGISTRY_TOKEN} (missing, mistyped, revoked or "
            "expired); ask the registry admin for this lab's token (`harness registry tokens "
            f"list` shows its state, `tokens rotate ID` issues a new one), set it, {_SYNC}"
        )
    if isinstance(exc, Forbidden):
        return (
            f"{ENV_REGISTRY_TOKEN} is not a lab token; use the token `harness registry labs add` "
            f"printed for this lab, {_SYNC}"
        )
    if isinstance(exc, Invalid) and "signed for lab" in message:
        return "this machine signs its bundles under another name than the registry knows; " + (
            _REENROL
        )
    if isinstance(exc, Invalid) and ("public key" in message or "signature" in message):
        return "the registry holds another key for this lab; " + _REENROL
    if isinstance(exc, Conflict):
        return (
            "the registry already holds this run id with other evidence, so this bundle can "
            "never be delivered; keep the run folder and tell the registry admin"
        )
    if isinstance(exc, NotFound):
        return f"check {ENV_REGISTRY_URL} (it must be the registry's base URL), {_SYNC}"
    if isinstance(exc, InfraError) and "CERTIFICATE_VERIFY_FAILED" in message:
        return (
            "this machine does not trust the registry's TLS certificate: set SSL_CERT_FILE to "
            f"the certificate of the CA that signed it (or to the server's own certificate), {_SYNC}"
        )
    if isinstance(exc, InfraError):
        return (
            f"the run is safe in the outbox ({outbox_dir()}); once the registry answers again "
            f"(check {ENV_REGISTRY_URL} and the network), run `harness registry sync`"
        )
    return f"fix the problem above, {_SYNC}"


def describe(exc: HarnessError) -> str:
    """The two-line text kept beside a queued outbox entry."""
    return Problem(" ".join(str(exc).split()), advice_for(exc)).text()


def queued_problem(run_id: str) -> Problem | None:
    """Why the outbox entry of `run_id` is still queued (None if it is not queued)."""
    from harness.registry.client import ERROR_SUFFIX, _entry_name

    path = outbox_dir() / (_entry_name(run_id) + ERROR_SUFFIX)
    try:
        return Problem.parse(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def queued_problem_of_folder(run_dir: Path) -> Problem | None:
    """Like queued_problem, for a run folder (its run.json names the run)."""
    from harness.report.bundle import read_run_json

    try:
        return queued_problem(read_run_json(Path(run_dir))["run_id"])
    except (HarnessError, KeyError, TypeError):
        return None
