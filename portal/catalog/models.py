from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from gateway import contract, route_policies
from gateway.policies.request_validation import openapi as openapi_checks
from portal.catalog.validators import (
    validate_allowed_methods,
    validate_header_names,
    validate_methods,
    validate_origins,
)
from portal.core.validators import validate_upstream_url


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class Api(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    summary = models.CharField(max_length=280, blank=True)
    description = models.TextField(blank=True, help_text="Markdown; sanitised when rendered.")
    tags = models.JSONField(default=list, blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_apis")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API"

    def __str__(self) -> str:
        return self.name


class LifecycleState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


# Allowed transitions. Retired is final: a retired version's consumers were told
# it is gone (410), so bringing it back would break that promise silently.
LIFECYCLE_TRANSITIONS: dict[str, set[str]] = {
    LifecycleState.DRAFT: {LifecycleState.PUBLISHED, LifecycleState.RETIRED},
    LifecycleState.PUBLISHED: {LifecycleState.DEPRECATED, LifecycleState.RETIRED},
    LifecycleState.DEPRECATED: {LifecycleState.PUBLISHED, LifecycleState.RETIRED},
    LifecycleState.RETIRED: set(),
}


class RedisFailureMode(models.TextChoices):
    FAIL_CLOSED = "fail_closed", "Fail closed (503)"
    FAIL_OPEN = "fail_open", "Fail open (local limit)"


def default_allowed_methods() -> list[str]:
    return list(contract.DEFAULT_ALLOWED_METHODS)


def default_cors_allowed_headers() -> list[str]:
    return list(contract.DEFAULT_CORS_ALLOWED_HEADERS)


def default_cors_exposed_headers() -> list[str]:
    return list(contract.DEFAULT_CORS_EXPOSED_HEADERS)


class ApiVersion(models.Model):
    api = models.ForeignKey(Api, on_delete=models.CASCADE, related_name="versions")
    label = models.SlugField(max_length=20, help_text="v1, v2, …")
    state = models.CharField(max_length=12, choices=LifecycleState.choices, default=LifecycleState.DRAFT)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    sunset_at = models.DateTimeField(null=True, blank=True)
    successor = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    openapi = models.JSONField(null=True, blank=True)
    changelog = models.TextField(blank=True)
    connect_timeout_s = models.FloatField(default=2.0, validators=[MinValueValidator(0.05), MaxValueValidator(60)])
    read_timeout_s = models.FloatField(default=30.0, validators=[MinValueValidator(0.05), MaxValueValidator(600)])
    total_timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(0.05), MaxValueValidator(3600)])
    max_body_bytes = models.PositiveBigIntegerField(
        default=10 * 1024 * 1024, validators=[MinValueValidator(0), MaxValueValidator(10 * 1024**3)]
    )
    allow_query_key = models.BooleanField(
        default=False, help_text="Accept the key in the api_key query parameter (it then appears in access logs)."
    )
    redis_failure_mode = models.CharField(
        max_length=12, choices=RedisFailureMode.choices, default=RedisFailureMode.FAIL_CLOSED
    )
    allowed_methods = models.JSONField(
        default=default_allowed_methods,
        validators=[validate_allowed_methods],
        help_text="HTTP methods the gateway forwards; anything else gets 405. TRACE and CONNECT are never allowed.",
    )
    # CORS. The portal's own origin is always allowed (for try-it), whatever these say.
    cors_enabled = models.BooleanField(
        default=True, help_text="Allow cross-origin calls from the origins below (the portal's own always is)."
    )
    cors_allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_origins],
        help_text="Exact origins, e.g. https://app.example.com; * for any origin (not with credentials).",
    )
    cors_allowed_methods = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_methods],
        help_text="Methods a browser may use cross-origin; empty means every allowed method.",
    )
    cors_allowed_headers = models.JSONField(
        default=default_cors_allowed_headers,
        blank=True,
        validators=[validate_header_names],
        help_text="Request headers a browser may send; the gateway's key header is always allowed.",
    )
    cors_exposed_headers = models.JSONField(
        default=default_cors_exposed_headers,
        blank=True,
        validators=[validate_header_names],
        help_text="Response headers a browser script may read (the rate-limit headers by default).",
    )
    cors_max_age_s = models.PositiveIntegerField(
        default=contract.DEFAULT_CORS_MAX_AGE_S,
        validators=[MinValueValidator(0), MaxValueValidator(contract.MAX_CORS_MAX_AGE_S)],
        help_text="How long a browser may cache a preflight answer, in seconds (at most a day).",
    )
    cors_allow_credentials = models.BooleanField(
        default=False, help_text="Let browsers send cookies and HTTP auth; then * is not an allowed origin."
    )
    # Edge policies (gateway/route_policies.py: transforms, IP rules, request validation),
    # stored as the operator gave them and checked in clean() with the gateway's own schema.
    policies = models.JSONField(
        default=dict,
        blank=True,
        help_text="Edge policies as JSON: request_transform, response_transform, ip_rules, request_validation, cache, "
        "websocket, upstream_health (see docs/gateway.md). Empty: none.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["api", "label"]
        constraints = [models.UniqueConstraint(fields=["api", "label"], name="apiversion_unique_label")]
        verbose_name = "API version"

    def __str__(self) -> str:
        return f"{self.api.slug} {self.label}"

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        origins = self.cors_allowed_origins
        if self.cors_allow_credentials and isinstance(origins, list) and "*" in origins:
            errors["cors_allowed_origins"] = "* cannot be combined with credentials: list the origins."
        methods, cors_methods = self.allowed_methods, self.cors_allowed_methods
        if isinstance(methods, list) and isinstance(cors_methods, list):
            extra = [m for m in cors_methods if m not in methods]
            if extra:
                errors["cors_allowed_methods"] = f"Not in the version's allowed methods: {', '.join(extra)}."
        try:
            route_policies.policies_check(self.policies, has_openapi=bool(self.openapi))
        except route_policies.PoliciesInvalid as exc:
            errors["policies"] = exc.problems
        else:
            if self.openapi and (self.policies or {}).get("request_validation", "off") != "off":
                problem = openapi_checks.document_problem(self.openapi)
                if problem:
                    errors["policies"] = [
                        f"request_validation: the gateway cannot validate with this document: {problem}"
                    ]
        if errors:
            raise ValidationError(errors)


class UpstreamTarget(models.Model):
    version = models.ForeignKey(ApiVersion, on_delete=models.CASCADE, related_name="upstreams")
    url = models.URLField(max_length=500, validators=[validate_upstream_url])
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)])

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.url} (weight {self.weight})"


class LifecycleEvent(models.Model):
    """Audit of every lifecycle transition (also mirrored in the general audit log)."""

    version = models.ForeignKey(ApiVersion, on_delete=models.CASCADE, related_name="lifecycle_events")
    from_state = models.CharField(max_length=12, choices=LifecycleState.choices)
    to_state = models.CharField(max_length=12, choices=LifecycleState.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_state} → {self.to_state}"
