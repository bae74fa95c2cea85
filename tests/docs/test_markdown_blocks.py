"""The doc-test convention itself: which blocks run, which are flagged, how output is matched."""

from __future__ import annotations

from pathlib import Path

from tests.docs.markdown_blocks import output_matches, parse


def doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


def test_sh_and_console_blocks_run_and_other_tags_do_not(tmp_path) -> None:
    page = parse(doc(tmp_path, "# T\n\n```sh\necho one\n```\n\n```yaml\na: 1\n```\n\n"
                               "```console\n$ echo two \\\n  three\ntwo three\n$ true\n```\n"))  # fmt: skip
    assert page.problems == []
    assert [(b.tag, b.line) for b in page.runnable] == [("sh", 3), ("console", 11)]
    console = page.runnable[1].commands
    assert [c.text for c in console] == ["echo two \\\n  three", "true"]
    assert console[0].expected == ["two three"] and console[1].expected == []


def test_untagged_and_indented_blocks_are_flagged_with_their_line(tmp_path) -> None:
    path = doc(tmp_path, "# T\n\n```\nharness run\n```\n\nText:\n\n    harness certify\n")
    problems = parse(path).problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:3: fenced block without a tag")
    assert problems[1].startswith(f"{path}:9: indented code block")


def test_example_marker_skips_only_the_next_block_and_machines_stick(tmp_path) -> None:
    page = parse(doc(tmp_path, "<!-- doctest: qemu slow -->\n\n<!-- machine: server -->\n\n"
                               "<!-- example: needs a board -->\n```sh\nharness certify --env x\n```\n\n"
                               "```sh\nharness registry boards\n```\n\n<!-- machine: lab -->\n\n"
                               "```sh\nharness registry sync\n```\n"))  # fmt: skip
    assert page.marks == ["qemu", "slow"]
    assert [(b.example, b.machine) for b in page.blocks] == [
        (True, "server"),
        (False, "server"),
        (False, "lab"),
    ]
    assert [b.source.strip() for b in page.runnable] == ["harness registry boards", "harness registry sync"]  # fmt: skip


def test_an_example_marker_does_not_reach_past_a_paragraph(tmp_path) -> None:
    page = parse(doc(tmp_path, "<!-- example -->\n\nSome words.\n\n```sh\ntrue\n```\n"))
    assert [b.example for b in page.blocks] == [False]


def test_expected_output_lines_match_within_one_line_with_ellipsis_as_a_wildcard() -> None:
    output = "verdict: CERTIFIED\n  registry: delivered\nlab 'vm' registered (key SHA256:ab12)\n"
    assert output_matches("  registry: delivered", output)
    assert output_matches("lab '...' registered (key SHA256:...)", output)
    assert not output_matches("registry: queued", output)
    assert not output_matches("verdict: ...delivered", output)  # pieces must share one line


def test_the_repository_docs_have_runnable_blocks_and_the_readme_is_marked_qemu() -> None:
    repo = Path(__file__).resolve().parents[2]
    registry = parse(repo / "docs" / "registry.md")
    assert {b.machine for b in registry.runnable} == {"server", "lab", "desk"}
    assert registry.runnable[-1].commands[-1].expected == ["0 delivered, 0 still queued"]
    assert any(
        "eligible-certified: ..." in c.expected for b in registry.runnable for c in b.commands
    )
    readme = parse(repo / "README.md")
    assert set(readme.marks) == {"qemu", "slow"}
    assert [c.text for b in readme.runnable for c in b.commands] == [
        "python3 -m harness certify",
        "python3 -m harness lab build --register-vendor-kernels",
        "python3 -m harness eligible --board qemu-x86_64-mini",
    ]
