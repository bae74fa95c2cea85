"""`harness certify --image` on the virtual x86_64 board: the board boots the image it is given,
and the certificate, run.json and the report name that image by its sha256.

One boot: `harness lab image` writes an image of the lab's build whose kernel command line
carries a marker of this test alone; the plan (tests/run/plans/image.yaml) checks on the
board that /proc/cmdline has that marker (the kernel was booted as the image's extlinux.conf
says) and that the board's disk reads back as the image file, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from harness.model.board import find_board
from tests.local_harness import local_harness
from tests.run.conftest import PLANS


@pytest.mark.qemu
def test_certify_with_an_image_boots_it_and_puts_its_sha256_on_the_certificate(
    tmp_path: Path, lab_artifacts: object
) -> None:
    marker = f"harness.image_marker={secrets.token_hex(4)}"
    image = tmp_path / "vx86-os.img"
    made = local_harness(tmp_path, "lab", "image", "--board", "qemu-x86_64", "-o", str(image),
                   "--append", marker)  # fmt: skip
    assert made.returncode == 0, made.stderr
    sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    assert f"sha256 {sha256}" in made.stdout

    # A direct-boot board gets the image as its last virtio disk, after the profile's own.
    disks = find_board("qemu-x86_64").lab.virtual.disks
    image_disk = "vd" + "abcdefgh"[len(disks)]
    result = local_harness(
        tmp_path, "certify", "--plan", str(PLANS / "image.yaml"), "--image", str(image),
        "--param", f"image_marker={marker}", "--param", f"image_sha256={sha256}",
        "--param", f"image_disk={image_disk}", "--results", str(tmp_path / "results"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: CERTIFIED" in result.stdout
    assert f"image:    vx86-os.img (sha256 {sha256})" in result.stdout
    assert "rests on certificate #1 from run " in result.stdout
    assert "(image vx86-os.img)" in result.stdout
    (folder,) = [p for p in (tmp_path / "results").iterdir() if (p / "run.json").is_file()]
    run = json.loads((folder / "run.json").read_text())
    assert run["image"]["name"] == "vx86-os.img"
    assert run["image"]["sha256"] == sha256
    assert run["image"]["size"] == image.stat().st_size
    outcomes = {
        line["id"]: line["outcome"]
        for line in map(json.loads, (folder / "results.jsonl").read_text().splitlines())
    }
    assert outcomes["booted-the-image"] == outcomes["image-is-the-disk"] == "pass"
    assert f"<code>{sha256}</code>" in (folder / "report.html").read_text()
    assert f'<property name="image.sha256" value="{sha256}"' in (folder / "junit.xml").read_text()

    certs = local_harness(tmp_path, "registry", "certs", "--json")
    assert certs.returncode == 0, certs.stderr
    (cert,) = json.loads(certs.stdout)
    assert cert["run_id"] == run["run_id"]
    assert cert["image"] == {"name": "vx86-os.img", "sha256": sha256}
