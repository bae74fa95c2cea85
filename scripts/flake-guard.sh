#!/usr/bin/env bash
# Flake guard: run the qemu-marked tests once more with two CPU-bound busy loops beside them.
#
# Why: the QEMU tests are the ones that race the clock when the host is slow (TCG boots, fault
# injection mid-command, consoles). CI machines are shared and loaded; a test that only passes
# on an idle machine is a defect. Running the same tests again while two busy loops compete
# for the CPUs shows such a test before it blocks somebody else's submission.
#
# Usage: bash scripts/flake-guard.sh [extra pytest args]
# Run after the README's test command (which has built the lab). Exit status: pytest's.
# FLAKE_GUARD_LOOP_SECONDS bounds the busy loops even if this script is killed (default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."

loop_seconds="${FLAKE_GUARD_LOOP_SECONDS:-1800}"
loops=()
stop_loops() {
	for pid in "${loops[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${loops[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap stop_loops EXIT

for _ in 1 2; do
	timeout "$loop_seconds" sh -c 'while :; do :; done' &
	loops+=("$!")
done

# The guard repeats the tests of the code that races a slow host: boards, consoles, boot and
# fault injection (tests/lab, tests/vlab/test_boot_qemu.py, tests/vlab/test_faults_qemu.py).
# Slow tests (the 20-boot stress run has busy loops of its own) and the QEMU tests of later
# stages (run, repro, registry, docs), which drive the same board code, run once, in the main
# pass: repeating all of them would double CI's time.
echo "flake guard: board and console qemu tests again, beside ${#loops[@]} busy loops (pids ${loops[*]})"
start=$(date +%s)
status=0
python3 -m pytest -m "qemu and not slow" tests/lab tests/vlab/test_boot_qemu.py \
	tests/vlab/test_faults_qemu.py "$@" || status=$?
echo "flake guard: qemu tests under load took $(($(date +%s) - start)) s (exit $status)"
exit "$status"
