"""One CLI: --format on every command that prints results, --json its synonym, and a
reader that stops reading (``| head``) is neither an error message nor "repaired"."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.cli import main

MAILDIR = str(FIXTURES / "maildir" / "alice")


@pytest.mark.parametrize("command", [
    ["check", MAILDIR],
    ["dump", MAILDIR + "/Maildir"],
    ["rules"],
])
def test_json_is_the_same_as_format_json(command: list[str]) -> None:
    runner = CliRunner()
    by_flag = runner.invoke(main, [*command, "--json"])
    by_format = runner.invoke(main, [*command, "--format", "json"])
    assert by_flag.exit_code == by_format.exit_code
    assert json.loads(by_flag.output) == json.loads(by_format.output)


@pytest.mark.parametrize("command", ["check", "dump", "repair", "scan", "rules"])
def test_every_printing_command_has_format_and_json(command: str) -> None:
    text = CliRunner().invoke(main, [command, "--help"]).output
    assert "--format" in text
    assert "--json" in text


@pytest.mark.parametrize("args", [["rules"], ["dump", "--json", MAILDIR + "/Maildir"]])
def test_a_reader_that_stops_early_gets_status_8_and_no_message(args: list[str]) -> None:
    done = subprocess.run(
        f"{sys.executable} -m dovecot_index_tool {' '.join(args)} | head -c 5 >/dev/null;"
        " exit ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, check=False,
    )
    assert done.returncode in (0, 8), done.stderr  # 0 when all fitted in the pipe first
    assert done.stderr == ""
