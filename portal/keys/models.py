from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import Application as OAuthApplication

from gateway import route_policies


def validate_ip_rules(value: object) -> None:
    try:
        route_policies.ip_rules_check(value)
    except route_policies.PoliciesInvalid as exc:
        raise ValidationError(exc.problems) from None


class Application(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # OAuth2 client-credentials client from django-oauth-toolkit, created on demand.
    oauth_client = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tollway_application",
    )
    # Operators only (the admin): replaces the IP rules of every version this application
    # calls (gateway/route_policies.py IpRules); empty: the versions' own apply.
    ip_rules = models.JSONField(
        null=True,
        blank=True,
        default=None,
        validators=[validate_ip_rules],
        help_text='IP rules replacing the versions\' own, e.g. {"allow": ["203.0.113.0/24"], "deny": []}. '
        "Empty: the versions' rules apply.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # "Developer", so the admin never shows two plain "Applications" (the other is OAuthClient's).
        verbose_name = "developer application"

    def __str__(self) -> str:
        return self.name


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"


class ApiKey(models.Model):
    """The full key is shown once at creation and never stored: only its display
    prefix and an HMAC-SHA256 under settings.KEY_HASH_SECRET."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=80, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set when a rotation replaced this key: it stays valid until then.
    grace_until = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label or 'no label'})"

    @property
    def effective_status(self) -> str:
        """What the gateway would decide now: active, rotating, expired or revoked."""
        now = timezone.now()
        if self.status == KeyStatus.REVOKED:
            return "revoked"
        if self.expires_at and self.expires_at <= now:
            return "expired"
        if self.grace_until:
            return "rotating" if self.grace_until > now else "expired"
        return "active"



class OAuthClient(OAuthApplication):  # type: ignore[misc]  # django-oauth-toolkit ships no types
    """django-oauth-toolkit's "Application" as the admin shows it: the OAuth2 client
    (client id and secret) of a developer application, not a second kind of application."""

    class Meta:
        proxy = True
        verbose_name = "OAuth client"
        verbose_name_plural = "OAuth clients (of developer applications)"
