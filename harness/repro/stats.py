"""The statistics behind a reproduction run, all from scipy.stats (nothing hand-rolled).

- Rate: k reproductions in n counted iterations, 95% Wilson score interval
  (`binomtest(k, n).proportion_ci(method="wilson")`): unlike the normal
  approximation it stays inside [0, 1] and is honest at 0/n and n/n.
- A/B: Fisher's exact test on the 2x2 table (two-sided).
- Verify resolution: a curtailed exact binomial test against the baseline rate
  p0 (docs/repro.md, "Verify resolution"). Stop at the first reproduction
  (`not-resolved`); declare `resolved` after n clean iterations, n being the
  smallest with P(0 reproductions in n | p0) = binomtest(0, n, p0,
  alternative="less").pvalue <= alpha. Its false-"resolved" rate when nothing
  was fixed is at most alpha (5%).
- Bisection: the same zero-reproduction rule decides "good" per build, with p0
  the lower Wilson bound of the known-bad build's rate; fewer iterations than
  that is "uncertain", never "good".

scipy.stats is imported inside the functions that use it: importing it costs about two
seconds of CPU, and every `harness` command (a plan run, a board check) imports this
module through the CLI without ever computing a rate. A reproduction run, which shows the
rate after every iteration, calls `preload()` while it logs in to the board, so the import
overlaps the login instead of stalling the first iteration.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MAX_NEEDED = 100_000
TEST_NAME = "curtailed exact binomial test (one-sided, H0: rate >= baseline rate)"


def preload() -> threading.Thread:
    """Import scipy.stats in the background (a caller about to compute rates, busy meanwhile
    with I/O such as a board login); the functions below import it again, at no cost."""

    def load() -> None:
        import scipy.stats  # noqa: F401

    thread = threading.Thread(target=load, name="preload-scipy-stats", daemon=True)
    thread.start()
    return thread


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of k/n, or None when nothing was counted."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def zero_failure_p_value(n: int, p0: float) -> float:
    """P(no reproduction in n iterations | true rate p0): the exact one-sided binomial p-value."""
    if n <= 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(0, n, p0, alternative="less").pvalue)


def iterations_needed(p0: float, alpha: float = ALPHA) -> int:
    """Fewest clean iterations after which a rate of p0 is rejected at level alpha."""
    if not 0 < p0 <= 1:
        raise ValueError(f"baseline rate must be in (0, 1], got {p0}")
    if p0 == 1:
        return 1
    n = 1
    while zero_failure_p_value(n, p0) > alpha:
        n += 1
        if n > MAX_NEEDED:
            return MAX_NEEDED
    return n


@dataclass(frozen=True)
class Comparison:
    a: tuple[int, int]
    b: tuple[int, int]
    p_value: float
    odds_ratio: float


def compare(a_k: int, a_n: int, b_k: int, b_n: int) -> Comparison:
    """Fisher's exact test of two rates (k reproductions of n counted iterations each)."""
    table = [[a_k, a_n - a_k], [b_k, b_n - b_k]]
    from scipy.stats import fisher_exact

    result = fisher_exact(table, alternative="two-sided")
    return Comparison((a_k, a_n), (b_k, b_n), float(result.pvalue), float(result.statistic))


def verify_verdict(
    reproduced: int, iterations: int, needed: int, alpha: float = ALPHA, p0: float = 1.0
) -> tuple[str, str, float | None]:
    """(verdict, why, p-value) of the curtailed test after `iterations` counted iterations."""
    if reproduced > 0:
        return (
            "not-resolved",
            f"reproduced {reproduced} time(s) in {iterations} iteration(s)",
            None,
        )
    p_value = zero_failure_p_value(iterations, p0)
    if iterations >= needed:
        return (
            "resolved",
            f"no reproduction in {iterations} iterations: p = {p_value:.4f} <= {alpha:g} that "
            f"the rate is still the baseline's {p0:.3f}",
            p_value,
        )
    return (
        "inconclusive",
        f"no reproduction in {iterations} of the {needed} iterations needed "
        f"(p = {p_value:.4f} > {alpha:g})",
        p_value,
    )
