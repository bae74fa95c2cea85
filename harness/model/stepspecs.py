"""The options of the plan's step kinds other than `run`: reboot, power-cycle, put, get, manual.

Kept apart from harness/model/plan.py (which re-exports them) so the plan module stays about
the plan's structure; each class is the mapping one step kind takes in the YAML.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt `expect` must not silently turn a check off."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BootSpec(Strict):
    """Options of `reboot` / `power-cycle`; the measured boot time is always recorded."""

    max_boot_time: float | None = Field(default=None, gt=0, description="seconds; slower is a fail")


class PutSpec(Strict):
    remote: str = Field(min_length=1)
    local: str | None = Field(default=None, description="file relative to the plan file")
    random_bytes: int | None = Field(default=None, gt=0, le=64 * 1024 * 1024)

    @model_validator(mode="after")
    def _one_source(self) -> PutSpec:
        if (self.local is None) == (self.random_bytes is None):
            raise ValueError("give exactly one of 'local' or 'random_bytes'")
        return self


class GetSpec(Strict):
    remote: str = Field(min_length=1)
    local: str | None = Field(default=None, description="name to keep it under in the run folder")
    same_as_put: bool = Field(
        default=False, description="fail unless identical to what this test put there"
    )


# How a not-run reason of a test whose operator step nobody answered begins, so a reader of
# results (the run report) can tell those from tests not run for other reasons.
OPERATOR_NOT_ASKED = "operator step not asked"
OPERATOR_NOT_ANSWERED = "operator step not answered"


class ManualSpec(Strict):
    """An operator step: what only a person at the bench can judge (an LED, HDMI, a sound).

    The run shows `instructions`, asks `verify` as a yes/no question and records the answer,
    the operator and an optional attached file; "no" fails the test. Without anyone to ask
    (`--unattended`, no terminal) the test is not-run (harness/run/operator.py).
    """

    instructions: str = Field(
        min_length=1, description="what the person does or looks at, e.g. 'look at the PWR LED'"
    )
    verify: str = Field(
        min_length=1, description="the yes/no question whose 'yes' is a pass: 'Is it steady green?'"
    )
