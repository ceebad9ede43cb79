"""Transforms compiled once per published route record, and the header edits they resolve
to for one request (applied by the proxy to the outgoing request or the upstream's response)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from multidict import CIMultiDict

from gateway.route_policies import PathPrefix, RequestTransform, ResponseTransform

_TEMPLATE = re.compile(r"\$\$|\$\(([a-z_]+)\)")

# A value: a constant string, or literal parts and $(names) to fill in per request.
Template = str | tuple[str | tuple[str], ...]


def compile_template(value: str) -> Template:
    if "$" not in value:
        return value
    parts: list[str | tuple[str]] = []
    last = 0
    for match in _TEMPLATE.finditer(value):
        parts.append(value[last : match.start()])
        parts.append("$" if match.group(1) is None else (match.group(1),))
        last = match.end()
    parts.append(value[last:])
    return tuple(p for p in parts if p != "")


def render(template: Template, context: Mapping[str, str]) -> str:
    if isinstance(template, str):
        return template
    return "".join(p if isinstance(p, str) else context.get(p[0], "") for p in template)


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Header changes for one message, values already filled in: remove, rename, set, add
    (Kong's request-transformer order). A value that came out empty is left out."""

    remove: tuple[str, ...]
    rename: tuple[tuple[str, str], ...]
    set: tuple[tuple[str, str], ...]
    add: tuple[tuple[str, str], ...]

    def apply(self, headers: CIMultiDict[str]) -> None:
        for name in self.remove:
            headers.popall(name, None)
        for old, new in self.rename:
            values = headers.popall(old, None)
            if values:
                headers.popall(new, None)
                for value in values:
                    headers.add(new, value)
        for name, value in self.set:
            headers[name] = value
        for name, value in self.add:
            if name not in headers:
                headers[name] = value


class CompiledHeaders:
    __slots__ = ("add", "constant", "remove", "rename", "set")

    def __init__(self, transform: RequestTransform | ResponseTransform) -> None:
        self.remove = tuple(transform.remove_headers)
        self.rename = tuple(transform.rename_headers.items())
        self.set = tuple((n, compile_template(v)) for n, v in transform.set_headers.items())
        self.add = tuple((n, compile_template(v)) for n, v in transform.add_headers.items())
        self.constant: HeaderEdit | None = None
        if all(isinstance(t, str) for _, t in (*self.set, *self.add)):
            self.constant = self.edit({})

    def edit(self, context: Mapping[str, str]) -> HeaderEdit:
        if self.constant is not None:
            return self.constant

        def filled(items: tuple[tuple[str, Template], ...]) -> tuple[tuple[str, str], ...]:
            out = ((n, render(t, context)) for n, t in items)
            return tuple((n, v) for n, v in out if v)

        return HeaderEdit(self.remove, self.rename, filled(self.set), filled(self.add))

    @property
    def empty(self) -> bool:
        return not (self.remove or self.rename or self.set or self.add)


class CompiledQuery:
    __slots__ = ("add", "remove", "rename")

    def __init__(self, transform: RequestTransform) -> None:
        self.remove = frozenset(transform.remove_query)
        self.rename = dict(transform.rename_query)
        self.add = tuple((n, compile_template(v)) for n, v in transform.add_query.items())

    @property
    def empty(self) -> bool:
        return not (self.remove or self.rename or self.add)

    def apply(self, query: str, context: Mapping[str, str]) -> str:
        kept: list[str] = []
        present: set[str] = set()
        for part in query.split("&") if query else ():
            raw_name, eq, value = part.partition("=")
            name = unquote_plus(raw_name, errors="replace")
            if name in self.remove:
                continue
            new = self.rename.get(name)
            if new is not None:
                name = new
                part = quote(new, safe="") + eq + value
            present.add(name)
            kept.append(part)
        for name, template in self.add:
            value = render(template, context)
            if value and name not in present:
                kept.append(f"{quote(name, safe='')}={quote(value, safe='')}")
        return "&".join(kept)


def rewrite_prefix(path: str, prefix: PathPrefix) -> str:
    """``/public/x`` with match ``/public`` and replace ``/v2`` -> ``/v2/x``; whole segments only."""
    match = prefix.match.rstrip("/")
    if path != match and not path.startswith(match + "/"):
        return path
    rest = path[len(match) :]
    replace = prefix.replace.rstrip("/")
    out = replace + rest
    return out if out.startswith("/") else "/" + out
