"""Read a tollway.yaml: parse it, remember the line of every path, validate it against the schema.

PyYAML's ``compose`` gives the node tree, whose marks carry the line of every mapping key
and sequence item; ``safe_load`` gives the data. Every error then reads
``tollway.yaml:14: apis[0].versions[1].state: cannot go from retired to published``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from portal.core.errors import ApplicationError
from portal.declarative.schema import config_json_schema

PathKey = tuple[str | int, ...]


class ConfigError(ApplicationError):
    """A configuration file that cannot be applied; nothing was changed. ``errors`` are the
    lines ``file:line: path: message``; the message is all of them, one per line."""

    code = "invalid_config"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors), fields={"config": errors})
        self.errors = errors


def path_text(path: PathKey) -> str:
    """("apis", 0, "versions", 1, "state") -> "apis[0].versions[1].state"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


@dataclass
class Document:
    """A parsed configuration and where each of its parts was written."""

    data: dict[str, Any]
    filename: str = "tollway.yaml"
    base_dir: Path | None = None  # for openapi_file; None when the text came over the API
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int:
        """The line of the path, or of its nearest written ancestor (1 for the document)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: PathKey, message: str) -> str:
        return f"{self.filename}:{self.line(path)}: {path_text(path)}: {message}"


def _record_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1  # the key's line, even for a block value below it
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def _plain(value: Any) -> Any:
    """YAML turns unquoted timestamps into datetimes; the schema speaks JSON, so back to text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def config_parse(text: str, *, filename: str = "tollway.yaml", base_dir: Path | None = None) -> Document:
    """Parse and schema-check a configuration; ConfigError names the file and line of each problem."""
    loader: yaml.SafeLoader | None = None
    try:
        # One parse: the node tree gives the lines, the same tree gives the data. The
        # loader is made inside the try: its reader refuses unprintable characters at once.
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        data = _plain(loader.construct_document(node)) if node is not None else None
    except ValueError as exc:  # an unquoted date YAML reads but the calendar refuses (2027-02-30)
        raise ConfigError([f"{filename}:1: not a valid date or value: {exc}"]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{filename}:{line}: not valid YAML: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}:1: not valid YAML: {exc}"]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict) or node is None:
        raise ConfigError([f"{filename}:1: the file must be a mapping with format_version, apis, plans, overrides"])
    document = Document(data=data, filename=filename, base_dir=base_dir)
    _record_lines(node, (), document.lines)
    validator = jsonschema.Draft202012Validator(
        config_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(data), key=lambda e: (document.line(tuple(e.absolute_path)), e.message))
    if errors:
        raise ConfigError([document.error(tuple(e.absolute_path), _short(e)) for e in errors])
    return document


def _short(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return str(error.message).replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "not":
        return "give openapi or openapi_file, not both"
    message = str(error.message)
    return message if len(message) <= 200 else message[:200] + "…"
