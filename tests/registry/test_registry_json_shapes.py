"""The `--json` shapes documented in docs/registry.md are the keys the commands print.

Each row of the table is parsed (its first backticked shape, top-level keys only) and the
commands of that row are run against a registry holding one of everything; the keys they
print, taken together, must be exactly the documented ones. A new row without an invocation
here, or an invocation for a row that is gone, fails too.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from harness.registry.cli import registry
from harness.registry.store import LOCAL_ADMIN
from tests.registry.runfolder import make_run_folder, repro_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def documented_shapes() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### `--json` shapes") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    shapes = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        shape = re.search(r"`([\[{].*?[}\]])`", cells[1])
        assert shape, f"docs/registry.md: no JSON shape in row {line!r}"
        shapes[cells[0]] = top_level_keys(shape.group(1))
    return shapes


def top_level_keys(shape: str) -> set[str]:
    body = shape.strip()
    if body.startswith("["):
        body = body[1:-1].strip()
    assert body.startswith("{") and body.endswith("}"), shape
    keys, depth, item = set(), 0, ""
    for char in body[1:-1] + ",":
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        if char == "," and depth == 0:
            keys.add(re.match(r"\s*(\w+)", item).group(1))  # type: ignore[union-attr]
            item = ""
        else:
            item += char
    return keys


def keys_of(output: str) -> set[str]:
    data: Any = json.loads(output)
    if isinstance(data, list):
        assert data, "empty list: the test registry should hold one of everything"
        data = data[0]
    return set(data)


def test_json_output_of_every_registry_command_has_the_documented_keys(
    db_url, store, lab, make_bundle_bytes, tmp_path
) -> None:
    cert = store.submit_bundle(make_bundle_bytes("shape-run"), lab)
    store.submit_bundle(make_bundle_bytes("shape-run-2"), lab)
    # a case is attached to and verified with repro runs of that case (docs/repro.md)
    store.submit_bundle(make_bundle_bytes("shape-repro", **repro_fields("C-1")), lab)
    fixed = repro_fields("C-1", "verify", reproduced=0)
    store.submit_bundle(make_bundle_bytes("shape-verify", **fixed), lab)
    store.register_kernel(
        "6.6.0-x", "", "build-1", [{"vendor": "Acme Boards", "model": "AB-100"}], LOCAL_ADMIN
    )
    db = ["--db", db_url]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down = {"HARNESS_REGISTRY_URL": f"http://127.0.0.1:{closed.getsockname()[1]}"}
    closed.close()
    local = {"HARNESS_REGISTRY_DB": db_url}
    case = [
        "--customer-ref",
        "c",
        "--severity",
        "low",
        "--subsystem",
        "usb",
        "--vendor",
        "Acme Boards",
        "--model",
        "AB-100",
        "--revision",
        "A1",
    ]
    device = [
        "--vendor",
        "Acme Boards",
        "--model",
        "AB-100",
        "--revision",
        "A1",
        "--os-release",
        "Debian 12",
        "--kernel",
        "6.1.0-27-arm64",
    ]
    enrolment = tmp_path / "other-lab.json"
    invocations: dict[str, list[tuple[list[str], dict[str, str]]]] = {
        "`eligible`": [([*db, "eligible", *device], {})],
        "`boards`": [([*db, "boards"], {})],
        "`certs`, `revoke`": [
            ([*db, "certs"], {}),
            ([*db, "revoke", str(cert["certificate_id"]), "--reason", "x"], {}),
        ],
        "`kernels`, `kernels add`": [
            ([*db, "kernels"], {}),
            (
                [
                    *db,
                    "kernels",
                    "add",
                    "--release",
                    "6.7",
                    "--build-id",
                    "b2",
                    "--board",
                    "Acme Boards/AB-100",
                ],
                {},
            ),
        ],
        "`cases`, `cases open/show/attach/verify`": [
            ([*db, "cases", "open", "--id", "C-1", *case], {}),
            ([*db, "cases"], {}),
            ([*db, "cases", "show", "C-1"], {}),
            ([*db, "cases", "attach", "C-1", "shape-repro"], {}),
            ([*db, "cases", "verify", "C-1", "--verdict", "resolved", "--run", "shape-verify"], {}),
        ],
        "`runs`": [([*db, "runs"], {})],
        "`audit`": [([*db, "audit"], {})],
        "`labs`": [([*db, "labs"], {})],
        "`labs self`": [(["labs", "self"], {})],
        "`labs add`": [([*db, "labs", "add", "--from-file", str(enrolment)], {})],
        "`tokens list`, `tokens revoke`": [
            ([*db, "tokens", "list"], {}),
            ([*db, "tokens", "revoke", "1"], {}),
        ],
        "`tokens create`, `tokens rotate`": [
            ([*db, "tokens", "create", "--role", "reader", "--label", "r"], {}),
            ([*db, "tokens", "rotate", "2"], {}),
        ],
        "`submit`": [
            (["submit", str(make_run_folder(tmp_path / "a", "submitted-run"))], local),
            (["submit", str(make_run_folder(tmp_path / "b", "queued-run"))], down),
        ],
        "`sync`": [(["sync"], down)],
    }
    documented = documented_shapes()
    assert set(documented) == set(invocations)
    runner = CliRunner()
    for row, calls in invocations.items():
        printed: set[str] = set()
        for args, env in calls:
            if args[-3:] == ["add", "--from-file", str(enrolment)]:
                enrolment.write_text(_other_lab_enrolment())
            result = runner.invoke(registry, [*args, "--json"], env=env, catch_exceptions=False)
            assert result.exit_code in (0, 3), (args, result.output)
            keys = keys_of(result.stdout)
            assert keys <= documented[row], (
                f"{row}: {args} printed undocumented {keys - documented[row]}"
            )
            printed |= keys
        assert printed == documented[row], (
            f"{row}: documented but never printed: {documented[row] - printed}"
        )


def _other_lab_enrolment() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.labkey import LabIdentity

    return json.dumps(LabIdentity("lab-two", Ed25519PrivateKey.generate()).enrolment())
