"""The numbers behind repro's verdicts: Wilson intervals, the verify-resolution stopping rule and
its error rates, Fisher's exact test for A/B, and the crash fingerprints of customer logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import binom

from harness.repro import stats
from harness.repro.fingerprint import compare, fingerprints, log_fingerprints

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("p0", [0.05, 0.1, 0.3, 0.5, 0.9, 1.0])
def test_verify_needs_the_fewest_clean_iterations_that_reject_the_baseline_at_5_percent(p0) -> None:
    n = stats.iterations_needed(p0)
    assert binom.pmf(0, n, p0) <= 0.05, "false 'resolved' rate at most alpha"
    if n > 1:
        assert binom.pmf(0, n - 1, p0) > 0.05, "one fewer would not do"


def test_thirty_percent_baseline_needs_nine_iterations() -> None:
    assert stats.iterations_needed(0.3) == 9


def test_verify_verdicts_follow_the_curtailed_rule() -> None:
    assert stats.verify_verdict(1, 3, 9, p0=0.3)[0] == "not-resolved"
    assert stats.verify_verdict(0, 9, 9, p0=0.3)[0] == "resolved"
    verdict, why, p = stats.verify_verdict(0, 4, 9, p0=0.3)
    assert verdict == "inconclusive" and "4 of the 9" in why and p == pytest.approx(0.7**4)


def test_wilson_interval_is_honest_at_the_edges() -> None:
    assert stats.wilson(0, 0) is None
    low, high = stats.wilson(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = stats.wilson(10, 10)
    assert high == 1 and low == pytest.approx(0.7225, abs=1e-4)


def test_fisher_exact_separates_30_percent_from_0_but_not_from_25() -> None:
    assert stats.compare(12, 40, 0, 40).p_value < 0.001
    assert stats.compare(12, 40, 10, 40).p_value > 0.5


def test_same_panic_in_another_boot_has_the_same_fingerprint_other_crash_differs() -> None:
    customer = log_fingerprints(REPO / "testplans" / "cases" / "kernel-panic.customer.log")
    board_log = """2026-11-30T08:50:01.000Z | [   38.512345] sysrq: Trigger a crash
2026-11-30T08:50:01.000Z | [   38.512679] Kernel panic - not syncing: sysrq triggered crash
2026-11-30T08:50:01.000Z | [   38.513002] CPU: 0 PID: 245 Comm: sh Not tainted 6.1.0-28-cloud-amd64 #1
2026-11-30T08:50:01.000Z | [   38.513800] Call Trace:
2026-11-30T08:50:01.000Z | [   38.513900]  <TASK>
2026-11-30T08:50:01.000Z | [   38.514000]  dump_stack_lvl+0x45/0x5e
2026-11-30T08:50:01.000Z | [   38.514100]  panic+0x11a/0x2f0
2026-11-30T08:50:01.000Z | [   38.514300]  sysrq_handle_crash+0x1a/0x20
2026-11-30T08:50:01.000Z | [   38.514400]  __handle_sysrq+0x9e/0x1a0
2026-11-30T08:50:01.000Z | [   38.514500]  write_sysrq_trigger+0x28/0x40
2026-11-30T08:50:01.000Z | [   38.514600]  proc_reg_write+0x59/0xa0
2026-11-30T08:50:01.000Z | [   38.514700]  vfs_write.isra.0+0xc9/0x410
2026-11-30T08:50:01.000Z | [   38.514800]  ksys_write+0x6b/0xf0
"""
    (board,) = fingerprints(board_log)
    assert board.function == "sysrq_handle_crash"
    assert compare(board, customer) == "same failure", "addresses, offsets, PIDs, clones removed"
    other = log_fingerprints(REPO / "tests" / "lab" / "samples" / "oops-then-panic.log")
    assert other[0].kind == "bad-access" and other[0].function == "acme_spi_probe"
    assert compare(board, other) == "different failure"
    assert compare(None, customer) == "no crash"
