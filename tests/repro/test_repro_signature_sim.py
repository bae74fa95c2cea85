"""Signature parts on the simulated board: `match: any` reproduces on one part, `match: all` only
when every part holds (else "partly matched"), exit statuses are a set, and the output regex is
searched in the trigger's output only (not in setup's). Run in-process on one board (a login per case)
because each case needs only one iteration."""

from __future__ import annotations

from pathlib import Path

from harness.model.case import load_case
from harness.repro.session import Plan, ReproSession

HEAD = """
kind: case
case: {id: demo-signature, customer_ref: ACME-3001, severity: 4, subsystem: userspace}
description: {summary: tool fails with status 5 or 3}
seen_on: {vendor: Harness Virtual Lab, model: "SIM (simulated, not hardware)", revision: "1"}
"""
# status 5, no 'fatal' in the trigger's output; setup prints 'fatal' (which must not count)
STEPS = """
setup:
  - run: echo "fatal error in setup is not the trigger"
trigger:
  - run: echo "tool ran"
  - run: sh -c 'exit 5'
    expect: {exit_status: null}
"""
CASES = {
    "any": ("signature: {exit_status: [3, 5], output: [fatal], match: any}", "reproduced",
            ["exit_status 5"], "reproduced: exit_status 5"),
    "all": ("signature: {exit_status: [3, 5], output: [fatal], match: all}", "not-reproduced",
            ["exit_status 5"], "signature only partly matched (exit_status 5)"),
    "output-in-setup-only": ("signature: {output: [fatal]}", "not-reproduced", [],
                             "signature not seen"),
    "other-status": ("signature: {exit_status: 3}", "not-reproduced", [], "signature not seen"),
    "all-hold": ("signature: {exit_status: 5, output: ['tool ran'], match: all}", "reproduced",
                 ["exit_status 5", "output /tool ran/"], "reproduced: exit_status 5, output /tool ran/"),
}  # fmt: skip


def test_signature_parts_decide_the_outcome(sim_board, tmp_path: Path) -> None:
    seen = {}
    for name, (signature, *_) in CASES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(HEAD + STEPS + signature + "\n")
        session = ReproSession(
            load_case(path),
            sim_board.profile,
            sim_board.env_file,
            tmp_path / "results",
            Plan(repeat=1, until_first=False, max_time=None, between="none"),
        )
        try:
            session.open()
            session.iterate()
            session.finish()
        finally:
            session.close()
        (record,) = session.records
        seen[name] = (record.outcome, record.matched, record.reason)
    assert seen == {name: tuple(expected) for name, (_, *expected) in CASES.items()}
