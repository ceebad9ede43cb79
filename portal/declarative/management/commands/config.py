"""manage.py config dump|diff|sync: the business layer as a YAML file (docs/configuration-as-code.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.selectors import is_operator, user_by_email
from portal.core.errors import ApplicationError
from portal.declarative.selectors import automation_token_get, automation_token_list, config_diff, config_dump
from portal.declarative.services import automation_token_create, automation_token_revoke, config_load, config_sync

if TYPE_CHECKING:
    from portal.accounts.models import User


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
    help = (
        "Dump the portal's APIs, versions, plans and overrides as YAML, diff a file against them, or sync it; "
        "manage the automation tokens CI uses for the REST API."
    )

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
        token = sub.add_parser("token", help="Named automation tokens for /api/v1/config/* (CI).")
        token_sub = token.add_subparsers(dest="token_action", required=True)
        create = token_sub.add_parser("create", help="Create a token and print it, once.")
        create.add_argument("name", help='e.g. "ci-deploy"; the audit log says automation:NAME.')
        create.add_argument("--actor", required=True, help="Email of the operator creating it.")
        revoke = token_sub.add_parser("revoke", help="Revoke a token at once.")
        revoke.add_argument("name")
        revoke.add_argument("--actor", required=True, help="Email of the operator revoking it.")
        token_sub.add_parser("list", help="List the tokens (never their secrets).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "dump":
                self.dump(options["output"])
            elif options["action"] == "diff":
                self.diff(options["file"], prune=options["prune"], force=options["force"])
            elif options["action"] == "token":
                self.token(options)
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
        actor = _operator(options["actor"])
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

    def token(self, options: dict[str, Any]) -> None:
        action = options["token_action"]
        if action == "list":
            for token in automation_token_list():
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                creator = token.created_by.email if token.created_by else "-"
                self.stdout.write(f"{token.name}\t{token.prefix}…\t{state}\tlast used {used}\tby {creator}")
            return
        actor = _operator(options["actor"])
        if action == "create":
            _, secret = automation_token_create(name=options["name"], actor=actor)
            self.stdout.write(secret)
            self.stderr.write("Store this token now (e.g. as a CI secret): it is not shown again.")
            return
        existing = automation_token_get(name=options["name"])
        if existing is None:
            raise CommandError(f"No automation token named {options['name']!r}.")
        automation_token_revoke(token=existing, actor=actor)
        self.stderr.write(f"Revoked {existing.name}.")


def _operator(email: str) -> User:
    actor = user_by_email(email)
    if actor is None or not is_operator(actor) or not actor.is_active:
        raise CommandError(f"{email} is not an operator (an active staff user).")
    return actor
