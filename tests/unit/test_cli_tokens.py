"""A token given on the command line reaches the command whatever its first character."""

from __future__ import annotations

import pytest

from jiandu.cli import build_parser, glue_token_values
from jiandu.settings import Settings


@pytest.mark.parametrize("command", [
    ["report", "--unit", "u", "--xlsx", "r.xlsx"],
    ["submit", "events.jsonl"],
    ["verify"],
    ["replay"],
    ["simulate"],
])
def test_a_token_starting_with_a_dash_is_a_value_not_an_option(command):
    argv = [*command, "--api", "http://127.0.0.1:8000", "--token", "-Xq9_token"]
    args = build_parser().parse_args(glue_token_values(argv))
    assert args.token == "-Xq9_token"
    assert args.api == "http://127.0.0.1:8000"


def test_other_arguments_are_left_as_they_were():
    argv = ["report", "--unit", "-u", "--token=abc", "--xlsx", "r.xlsx", "--token"]
    assert glue_token_values(argv) == argv


def test_generated_admin_tokens_never_start_with_a_dash(tmp_path):
    tokens = {Settings(data_dir=tmp_path / str(i), admin_token=None).ensure_admin_token() for i in range(2000)}
    assert len(tokens) == 2000  # (63/64)^2000: bare urlsafe tokens would all miss "-" 1 time in 10^13
    assert not [t for t in tokens if t.startswith("-")]
    again = Settings(data_dir=tmp_path / "0", admin_token=None).ensure_admin_token()
    assert again in tokens
