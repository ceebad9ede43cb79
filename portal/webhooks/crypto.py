"""Signing secrets: made, stored encrypted, and used to sign per Standard Webhooks.

A secret is ``whsec_`` + base64 of 32 random bytes, the format every Standard Webhooks
library reads. Signing needs the secret itself, so unlike an API key it cannot be kept
as a one-way hash: it is encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256) under a
key derived from ``WEBHOOK_SECRET_KEY`` (default ``SECRET_KEY``). A database dump alone
then yields no secret; nothing in the portal ever decrypts one for display.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_display_prefix(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4]


def _fernet_for(key_material: str) -> Fernet:
    # A distinct, fixed-length key for this one purpose, whatever the setting's shape.
    digest = hashlib.sha256(b"tollway-webhook-secrets\x00" + key_material.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _fernet() -> MultiFernet:
    # The first key encrypts; the fallbacks still decrypt, so the setting can be rotated.
    keys = [settings.WEBHOOK_SECRET_KEY, *settings.WEBHOOK_SECRET_KEY_FALLBACKS]
    return MultiFernet([_fernet_for(k) for k in keys])


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


class SecretUnreadable(Exception):
    """The stored secret was encrypted under a key that is no longer configured."""


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise SecretUnreadable("The webhook secret cannot be decrypted with WEBHOOK_SECRET_KEY.") from exc


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` under the decoded secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets_: list[str], *, message_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per secret: during a rotation both verify."""
    return " ".join(signature(s, message_id=message_id, timestamp=timestamp, body=body) for s in secrets_)
