"""manage.py config dump|diff|sync: the business layer as a YAML file (docs/configuration-as-code.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.selectors import is_operator, user_by_email
from portal.core.errors import ApplicationError
from portal.declarative.selectors import config_diff, config_dump
from portal.declarative.services import config_load, config_sync


class _Dumper(yaml.SafeDumper):
    """Multi-line text (descriptions, changelogs) as ``|`` blocks, readable and diffable in git."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def config_yaml(data: dict[str, Any]) -> str:
    """The dump as YAML: keys in the dump's order, multi-line text as block scalars."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


class Command(BaseCommand):
    help = "Dump the portal's APIs, versions, plans and overrides as YAML, diff a file against them, or sync it."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        dump = sub.add_parser("dump", help="Write the live state as YAML.")
        dump.add_argument("--output", "-o", type=Path, help="File to write (default: standard output).")
        diff = sub.add_parser("diff", help="Show what a sync of FILE would change.")
        diff.add_argument("file", type=Path)
        diff.add_argument("--prune", action="store_true", help="Include what the file no longer names.")
        diff.add_argument("--force", action="store_true", help="With --prune: show what --force would remove.")
        sync = sub.add_parser("sync", help="Apply FILE, all or nothing.")
        sync.add_argument("file", type=Path)
        sync.add_argument("--actor", required=True, help="Email of the operator the audit log names.")
        sync.add_argument("--dry-run", action="store_true", help="Show the changes; change nothing.")
        sync.add_argument("--prune", action="store_true", help="Remove what the file no longer names.")
        sync.add_argument("--force", action="store_true", help="Prune even plans in use and versions with traffic.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "dump":
                self.dump(options["output"])
            elif options["action"] == "diff":
                self.diff(options["file"], prune=options["prune"], force=options["force"])
            else:
                self.sync(options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    def dump(self, output: Path | None) -> None:
        text = config_yaml(config_dump())
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{output}: cannot write: {exc.strerror}") from exc
        self.stderr.write(f"Wrote {output}.")

    def diff(self, file: Path, *, prune: bool, force: bool) -> None:
        changes = config_diff(document=config_load(file), prune=prune, force=force)
        for change in changes:
            self.stdout.write(str(change))
        self.stderr.write(f"{len(changes)} change(s).")

    def sync(self, options: dict[str, Any]) -> None:
        actor = user_by_email(options["actor"])
        if actor is None or not is_operator(actor) or not actor.is_active:
            raise CommandError(f"{options['actor']} is not an operator (an active staff user).")
        result = config_sync(
            document=config_load(options["file"]),
            actor=actor,
            prune=options["prune"],
            force=options["force"],
            dry_run=options["dry_run"],
        )
        for change in result.changes:
            self.stdout.write(str(change))
        verb = "would change" if options["dry_run"] else "changed"
        self.stderr.write(f"{len(result.changes)} change(s) {verb}.")
