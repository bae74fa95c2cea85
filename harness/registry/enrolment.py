"""Reading a lab's enrolment (`harness registry labs self --json`) for `labs add`.

The enrolment is the only way to register a lab: it carries the name the lab
signs its bundles with, its public key and the key's signature of both, so the
name a registry knows a lab by cannot differ from the name in its bundles.
Pydantic checks the shape; the store checks the signature.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import Location, UserError

MAX_ENROLMENT_BYTES = 64 << 10


class Enrolment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(min_length=1, max_length=200)
    signature: str = Field(min_length=1, max_length=200)


def read_enrolment(path: Path) -> Enrolment:
    """Parse an enrolment file ('-' reads standard input); bad input is a UserError naming it."""
    where = "<stdin>" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(MAX_ENROLMENT_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_ENROLMENT_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read the enrolment: {exc.strerror}", Location(where)) from None
    if len(raw) > MAX_ENROLMENT_BYTES:
        raise UserError(
            f"an enrolment is a few hundred bytes; this is over {MAX_ENROLMENT_BYTES}",
            Location(where),
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(
            f"not JSON ({exc}); give the output of `harness registry labs self --json` on the lab",
            Location(where),
        ) from None
    try:
        return Enrolment.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise UserError(
            f"{first['msg']}; give the output of `harness registry labs self --json` on the lab",
            Location(where, None, field),
        ) from None
