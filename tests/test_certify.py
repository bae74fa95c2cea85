"""The README's main job: certify the built-in virtual board, feed the local registry, show the verdict.

`harness certify` is run here with the lab smoke plan: what this file proves is the chain from a
run to a certificate, the registry and eligibility, which is the same for every plan. The default
plan (testplans/precert.yaml, minutes on a loaded host) is proven on this board by
tests/run/test_run_qemu.py and, through the README's own `python3 -m harness certify`, by
tests/docs; running it a third time here would only add CI time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local_harness import local_harness

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "testplans" / "smoke.yaml"


def certify(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return local_harness(tmp_path, "certify", "--results", str(tmp_path / "results"), *args)


@pytest.mark.qemu
def test_certify_default_board_is_certified_registered_and_eligible(
    tmp_path: Path, lab_artifacts: object
) -> None:
    result = certify(tmp_path, "--plan", str(SMOKE))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "verdict: CERTIFIED" in out
    assert "registry: delivered" in out
    assert "eligibility: eligible-certified" in out
    (folder,) = [p for p in (tmp_path / "results").iterdir() if (p / "run.json").is_file()]
    run = json.loads((folder / "run.json").read_text())
    assert run["verdict"] == "certified"
    assert run["board"]["name"] == "qemu-x86_64", "the default board"
    assert f"rests on certificate #1 from run {run['run_id']}" in out
    # The registry answers the same question on its own afterwards.
    env = dict(os.environ, HARNESS_DATA_HOME=str(tmp_path / "data"))
    env.pop("HARNESS_REGISTRY_URL", None)
    env.pop("HARNESS_REGISTRY_DB", None)
    asked = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "registry",
            "eligible",
            "--board",
            "boards/qemu-x86_64.yaml",
            "--os-release",
            run["software"]["os_release"],
            "--kernel",
            run["software"]["kernel_release"],
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["status"] == "eligible-certified"


def test_certify_with_a_malformed_plan_exits_2_before_touching_a_board(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "kind: plan\nid: p\nversion: '1'\ntitle: t\ntests:\n"
        "  - id: a\n    title: A\n    category: c\n    blocker: maybe\n"
        "    steps:\n      - run: 'true'\n"
    )
    result = certify(tmp_path, "--plan", str(plan))
    assert result.returncode == 2
    assert f"{plan}:9" in result.stderr
    assert "blocker" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_certify_unattended_leaves_operator_tests_not_run_and_the_verdict_incomplete(
    tmp_path: Path,
) -> None:
    plan = REPO / "tests" / "run" / "plans" / "operator.yaml"
    result = certify(tmp_path, "--board", "sim", "--plan", str(plan), "--unattended", "--no-submit")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "verdict: INCOMPLETE" in result.stdout
    assert "tests:    1 pass, 2 not-run" in result.stdout
    assert "operator step not asked: the run is --unattended" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--param", "reboots=3"), "plan 'precert' has no parameter 'reboots'"),
        (("--param", "warm_reboots=many"), "parameter 'warm_reboots' must be a number"),
        (("--answers", "-"), "runs unattended: nobody answers operator steps"),
    ],
)
def test_a_fan_out_refuses_bad_parameters_and_operator_answers_once_before_any_place(
    tmp_path: Path, extra: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before the coordinator is even asked (none runs here): one clear refusal, not
    one failed run per board."""
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:9")  # nothing listens there
    result = certify(tmp_path, "--places", "board=*", *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
