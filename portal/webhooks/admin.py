"""Operators' webhooks in the admin: their platform-wide endpoints (and every organization's,
for support), the delivery log, manual retries and test events. Every save goes through
the services; a new or rotated secret is shown once, on a page of its own, never stored
in a message (messages may travel in a cookie)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from portal.core.admin_helpers import ServiceAdmin, admin_user, run_action
from portal.webhooks import services
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

SECRET_ATTR = "_tollway_webhook_secret"  # noqa: S105 (an attribute name)


class EndpointAdminForm(forms.ModelForm[WebhookEndpoint]):
    event_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "is_enabled"]


def _secret_page(request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> HttpResponse:
    response = TemplateResponse(
        request, "webhooks/admin_secret.html", {"endpoint": endpoint, "secret": secret, "title": "Signing secret"}
    )
    add_never_cache_headers(response)
    return response


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin[WebhookEndpoint]):
    form = EndpointAdminForm
    list_display = ["url", "organization", "is_enabled", "secret_prefix", "failing_since", "created_at"]
    list_filter = ["is_enabled", ("organization", admin.EmptyFieldListFilter)]
    search_fields = ["url", "description", "organization__name"]
    readonly_fields = ["secret_prefix", "previous_secret_until", "failing_since", "disabled_reason", "created_by",
                       "created_at"]
    actions = ["endpoints_send_test", "endpoints_rotate_secret"]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        # Ownership is set once: moving an endpoint would hand its secret to another organization.
        return [*self.readonly_fields, "organization"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm[Any], change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.webhook_endpoint_update(
                endpoint=obj,
                actor=admin_user(request),
                url=data["url"],
                event_types=list(data["event_types"]),
                description=data["description"],
                is_enabled=data["is_enabled"],
            )
            return
        created = services.webhook_endpoint_create(
            organization=data["organization"],
            url=data["url"],
            event_types=list(data["event_types"]),
            description=data["description"],
            actor=admin_user(request),
        )
        obj.pk = created.endpoint.pk
        setattr(request, SECRET_ATTR, created.secret)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None) -> Any:
        secret = getattr(request, SECRET_ATTR, None)
        if secret:
            return _secret_page(request, WebhookEndpoint.objects.get(pk=obj.pk), secret)
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(endpoint=obj, actor=admin_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.webhook_endpoint_delete(endpoint=endpoint, actor=admin_user(request))

    @admin.action(description="Send a test event")
    def endpoints_send_test(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        run_action(request, queryset, lambda e: services.webhook_test_send(endpoint=e, actor=admin_user(request)),
                   "sent a test event to")

    @admin.action(description="Rotate the signing secret (one endpoint; the old one signs for 24 hours)")
    def endpoints_rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            messages.warning(request, "Select exactly one endpoint: its new secret is shown once.")
            return None
        rotated = services.webhook_endpoint_secret_rotate(endpoint=queryset.get(), actor=admin_user(request))
        return _secret_page(request, rotated.endpoint, rotated.secret)


DELIVERY_FIELDS = ("event", "endpoint", "status", "attempts", "max_attempts", "next_attempt_at", "last_attempt_at",
                   "last_status_code", "last_latency_ms", "last_response_excerpt", "last_error", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = ["event", "endpoint", "status", "attempts", "last_status_code", "last_latency_ms",
                    "next_attempt_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["event__message_id", "event__event_type", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    actions = ["deliveries_retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    @admin.action(description="Retry selected deliveries now")
    def deliveries_retry(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        run_action(request, queryset, lambda d: services.webhook_delivery_retry(delivery=d, actor=admin_user(request)),
                   "queued")
