"""Typed readers for settings that come from the environment, the same rules everywhere.

Portal, analytics and gateway all read their settings through these functions,
so a value means the same thing whichever process reads it:

* Every reader also honours ``NAME_FILE``: a path whose contents are the value, so
  that secrets can come from a mounted file instead of the process environment.
  The file wins over ``NAME``.
* Surrounding whitespace is stripped (a file's trailing newline included).
* An empty value means "unset": the default applies.
* A bad value raises ``EnvError`` (a ``ValueError``) whose message names the
  variable. Each caller turns it into its own start-up error: the gateway exits
  with code 2, the portal raises ImproperlyConfigured.

``env`` defaults to ``os.environ``; the gateway passes its own mapping so that
its configuration can be built from a plain dict in tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})

N = TypeVar("N", int, float)


class EnvError(ValueError):
    """A setting is malformed or unreadable; the message names the variable."""


def read(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The stripped value of NAME (or of the file named by NAME_FILE); None when unset or empty."""
    env = os.environ if env is None else env
    file_path = (env.get(f"{name}_FILE") or "").strip()
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as fh:
                raw = fh.read()
        except OSError as exc:
            raise EnvError(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    else:
        raw = env.get(name) or ""
    return raw.strip() or None


def read_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    value = read(name, env)
    return default if value is None else value


def read_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    value = read(name, env)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise EnvError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _bounded(name: str, value: N, raw: str, minimum: N | None, maximum: N | None) -> N:
    if minimum is not None and value < minimum:
        raise EnvError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise EnvError(f"{name}={raw!r} must be at most {maximum}")
    return value


def read_int(
    name: str,
    default: int,
    env: Mapping[str, str] | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer; the default is not checked against the bounds (it is the caller's own)."""
    raw = read(name, env)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not an integer") from exc
    return _bounded(name, value, raw, minimum, maximum)


def read_float(
    name: str,
    default: float,
    env: Mapping[str, str] | None = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    raw = read(name, env)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not a number") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise EnvError(f"{name}={raw!r} is not a finite number")
    return _bounded(name, value, raw, minimum, maximum)


def read_list(name: str, default: Sequence[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; items are stripped and empty items dropped."""
    raw = read(name, env)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def read_choice(name: str, default: str, choices: Iterable[str], env: Mapping[str, str] | None = None) -> str:
    """One of ``choices``, compared case-insensitively and returned as spelled in ``choices``."""
    raw = read(name, env)
    if raw is None:
        return default
    options = list(choices)
    for option in options:
        if option.lower() == raw.lower():
            return option
    raise EnvError(f"{name}={raw!r} is not one of: {', '.join(options)}")


def check_choices(name: str, values: Iterable[str], choices: Iterable[str]) -> None:
    """Refuse list items that are not among ``choices``, naming the variable."""
    known = list(choices)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise EnvError(f"{name} names unknown values: {unknown}; known: {sorted(known)}")
