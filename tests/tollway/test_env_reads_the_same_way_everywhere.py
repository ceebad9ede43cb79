"""tollway.env: the one set of rules portal, analytics and gateway read settings by."""

from __future__ import annotations

import pytest

from gateway.policies import registry
from tollway.env import EnvError, read, read_bool, read_choice, read_float, read_int, read_list, read_str


def test_whitespace_is_stripped_and_empty_means_unset():
    env = {"A": "  x  ", "B": "", "C": "   ", "N": " 7 ", "F": ""}
    assert read_str("A", "d", env) == "x"
    assert read_str("B", "d", env) == "d"
    assert read_str("C", "d", env) == "d"
    assert read("B", env) is None
    assert read_int("N", 0, env) == 7
    assert read_bool("F", True, env) is True
    assert read_list("B", ["x", "y"], env) == ["x", "y"]


def test_a_file_wins_over_the_variable(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert read("S", {"S": "plain", "S_FILE": str(secret)}) == "from-a-file"
    (tmp_path / "n").write_text(" 42 \n")
    assert read_int("N", 0, {"N": "1", "N_FILE": str(tmp_path / "n")}) == 42
    with pytest.raises(EnvError, match="S_FILE"):
        read("S", {"S_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda env: read_int("N", 1, env, minimum=1), "N='0' must be at least 1"),
        (lambda env: read_int("N", 1, env, maximum=-1), "N='0' must be at most -1"),
        (lambda env: read_float("X", 1.0, env), "X='nope' is not a number"),
        (lambda env: read_bool("X", True, env), "X='nope' is not a boolean"),
        (lambda env: read_choice("X", "a", ("a", "b"), env), "X='nope' is not one of: a, b"),
    ],
)
def test_a_bad_value_names_the_variable(call, message):
    with pytest.raises(EnvError, match=message):
        call({"N": "0", "X": "nope"})


def test_lists_and_choices():
    assert read_list("L", (), {"L": " a, ,b ,"}) == ["a", "b"]
    assert read_choice("C", "INFO", ("DEBUG", "INFO"), {"C": "debug"}) == "DEBUG"


def test_the_registry_adds_what_the_auth_policies_require():
    assert registry.resolve(["key_auth", "rate_limit"]) == {
        "key_auth": (), "subscription": ("key_auth",), "rate_limit": (),
    }
    assert registry.resolve(["oauth2", "key_auth"])["subscription"] == ("key_auth", "oauth2")
    assert registry.resolve(["subscription"]) == {"subscription": ()}
    assert registry.resolve([]) == {}
