"""Operators' admin for APIs, versions and plans. Every save goes through the services,
so a change made here is validated, audited and published exactly like one made through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from gateway import contract
from portal.catalog import services
from portal.catalog.models import Api, ApiVersion, LifecycleEvent, LifecycleState, default_allowed_methods
from portal.core.admin_helpers import ServiceAdmin, admin_user, changed_fields, run_action
from portal.core.errors import ApplicationError
from portal.core.validators import validate_upstream_url
from portal.plans import services as plan_services
from portal.plans.limits import LIMIT_FIELDS
from portal.plans.models import Plan

# Tuples: the admin types these attributes as read-only sequences.
PLAN_INLINE_FIELDS = (
    "slug", "name", *LIMIT_FIELDS, "monthly_price", "currency", "requires_approval", "visibility", "is_active",
)
VERSION_INLINE_FIELDS = ("label", "state", "deprecated_at", "sunset_at", "successor")
LIFECYCLE_EVENT_FIELDS = ("from_state", "to_state", "actor", "created_at")


class PlanInline(admin.TabularInline[Plan, Api]):
    model = Plan
    extra = 0
    can_delete = False
    show_change_link = True
    fields = PLAN_INLINE_FIELDS


class VersionInline(admin.TabularInline[ApiVersion, Api]):
    model = ApiVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = VERSION_INLINE_FIELDS
    readonly_fields = VERSION_INLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Api | None = None) -> bool:
        return False  # versions are added on their own page, which takes upstreams and OpenAPI


@admin.register(Api)
class ApiAdmin(ServiceAdmin[Api]):
    list_display = ["name", "slug", "visibility", "owner", "updated_at"]
    list_filter = ["visibility"]
    search_fields = ["name", "slug", "summary"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [VersionInline, PlanInline]
    fields = ["slug", "name", "summary", "description", "tags", "visibility", "owner"]

    def has_delete_permission(self, request: HttpRequest, obj: Api | None = None) -> bool:
        return False  # retire versions instead: deleting would orphan consumers without a 410

    def save_model(self, request: HttpRequest, obj: Api, form: forms.ModelForm[Api], change: bool) -> None:
        if change:
            services.api_update(api=obj, actor=admin_user(request), **changed_fields(form, services.API_FIELDS))
        else:
            fields = {name: form.cleaned_data[name] for name in services.API_FIELDS}
            created = services.api_create(actor=admin_user(request), owner=form.cleaned_data.get("owner"), **fields)
            obj.pk = created.pk

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Api],
        formset: BaseInlineFormSet[Model, Api, forms.ModelForm[Model]],
        change: bool,
    ) -> None:
        if formset.model is not Plan:
            return super().save_formset(request, form, formset, change)
        plans = cast("BaseInlineFormSet[Plan, Api, forms.ModelForm[Plan]]", formset)  # the model, checked above
        actor = admin_user(request)
        # The admin's change message reads these after saving; without them adding an
        # API in the admin crashed with AttributeError (found by tests/e2e).
        plans.new_objects, plans.changed_objects, plans.deleted_objects = [], [], []
        for plan_form in plans.forms:
            if not plan_form.has_changed():
                continue
            data = {name: plan_form.cleaned_data[name] for name in PLAN_INLINE_FIELDS}
            if plan_form.instance.pk:
                plan = plan_services.plan_update(
                    plan=plan_form.instance, actor=actor, **changed_fields(plan_form, PLAN_INLINE_FIELDS)
                )
                plans.changed_objects.append((plan, plan_form.changed_data))
            else:
                plans.new_objects.append(plan_services.plan_create(actor=actor, api=form.instance, **data))
        return None


def parse_upstreams(text: str) -> list[dict[str, Any]]:
    """One upstream per line: ``URL`` or ``URL weight``; each URL validated like the model does."""
    url_validator = URLValidator(schemes=["http", "https"])
    upstreams = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        weight = 1
        if len(parts) == 2 and parts[1].isdigit():
            weight = int(parts[1])
        elif len(parts) != 1:
            raise ValidationError(f"Cannot read {line!r}: write 'URL' or 'URL weight'.")
        validate_upstream_url(parts[0])
        url_validator(parts[0])
        if not 1 <= weight <= 1000:
            raise ValidationError("A weight is a whole number from 1 to 1000.")
        upstreams.append({"url": parts[0], "weight": weight})
    if not upstreams:
        raise ValidationError("Give at least one upstream URL.")
    return upstreams


VERSION_FORM_FIELDS = [
    "api", "label", "successor", "sunset_at", "changelog", "connect_timeout_s", "read_timeout_s",
    "total_timeout_s", "max_body_bytes", "allow_query_key", "redis_failure_mode",
    "allowed_methods", *services.CORS_FIELDS, "policies",
]
# Lists edited as comma-separated text rather than as JSON.
VERSION_LIST_FIELDS = [
    "allowed_methods", "cors_allowed_origins", "cors_allowed_methods", "cors_allowed_headers", "cors_exposed_headers",
]


class CommaSeparatedListField(forms.CharField):
    """A list of strings typed as "GET, POST" (commas or whitespace); the model validates the items."""

    def __init__(self, *, encoder: Any = None, decoder: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # JSONField.formfield passes its encoder and decoder; lists need neither

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        return [item for item in str(value or "").replace(",", " ").split() if item]


class ApiVersionForm(forms.ModelForm[ApiVersion]):
    upstreams_text = forms.CharField(
        label="Upstreams",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: URL, optionally followed by a weight, e.g. 'http://10.0.0.5:8080 3'.",
    )
    openapi_file = forms.FileField(required=False, label="OpenAPI document", help_text="JSON or YAML; validated.")

    class Meta:
        model = ApiVersion
        fields = VERSION_FORM_FIELDS
        field_classes = {name: CommaSeparatedListField for name in VERSION_LIST_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in VERSION_LIST_FIELDS:
            self.fields[name].widget = forms.TextInput(attrs={"size": 80})
        # Left empty (or missing from an older form), these take their defaults.
        self.fields["allowed_methods"].required = False
        self.fields["allowed_methods"].help_text += " Empty: the default list."
        self.fields["cors_max_age_s"].required = False
        if self.instance.pk:
            self.fields["upstreams_text"].initial = "\n".join(
                f"{u.url} {u.weight}" for u in self.instance.upstreams.all()
            )

    def clean_allowed_methods(self) -> list[str]:
        return self.cleaned_data.get("allowed_methods") or default_allowed_methods()

    def clean_cors_max_age_s(self) -> int:
        value = self.cleaned_data.get("cors_max_age_s")
        return contract.DEFAULT_CORS_MAX_AGE_S if value is None else int(value)

    def clean_policies(self) -> dict[str, Any]:
        return self.cleaned_data.get("policies") or {}  # left empty: no policies

    def clean_upstreams_text(self) -> list[dict[str, Any]]:
        return parse_upstreams(self.cleaned_data["upstreams_text"])

    def clean_openapi_file(self) -> dict[str, Any] | None:
        upload = self.cleaned_data.get("openapi_file")
        if not upload:
            return None
        try:
            document = services.openapi_parse(upload.read(services.MAX_OPENAPI_BYTES + 1))
        except ApplicationError as exc:
            raise ValidationError([exc.message, *exc.fields.get("openapi", [])]) from exc
        # The model's checks (request_validation needs a document) see the one uploaded now.
        self.instance.openapi = document
        return document


class LifecycleActionForm(ActionForm):
    sunset_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Sunset in days (deprecate)", initial=90
    )


class LifecycleEventInline(admin.TabularInline[LifecycleEvent, ApiVersion]):
    model = LifecycleEvent
    extra = 0
    can_delete = False
    readonly_fields = LIFECYCLE_EVENT_FIELDS
    fields = LIFECYCLE_EVENT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: ApiVersion | None = None) -> bool:
        return False


@admin.register(ApiVersion)
class ApiVersionAdmin(ServiceAdmin[ApiVersion]):
    form = ApiVersionForm
    list_display = ["__str__", "state", "deprecated_at", "sunset_at", "successor", "updated_at"]
    list_filter = ["state", "api", "redis_failure_mode"]
    search_fields = ["api__name", "api__slug", "label"]
    readonly_fields = ["state", "deprecated_at"]
    fieldsets = [
        (None, {"fields": ["api", "label", "state", "deprecated_at", "successor", "sunset_at", "changelog"]}),
        ("Gateway", {"fields": [
            "upstreams_text", "openapi_file", "connect_timeout_s", "read_timeout_s", "total_timeout_s",
            "max_body_bytes", "allow_query_key", "redis_failure_mode", "allowed_methods",
        ]}),
        ("CORS (the portal's own origin is always allowed, for try-it)", {"fields": [*services.CORS_FIELDS]}),
        ("Edge policies (transforms, IP rules, request validation; see docs/gateway.md)", {"fields": ["policies"]}),
    ]
    inlines = [LifecycleEventInline]
    actions = ["versions_publish", "versions_deprecate", "versions_retire"]
    action_form = LifecycleActionForm

    def has_delete_permission(self, request: HttpRequest, obj: ApiVersion | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ApiVersion, form: forms.ModelForm[ApiVersion], change: bool
    ) -> None:
        fields = {
            name: form.cleaned_data[name]
            for name in VERSION_FORM_FIELDS
            if name not in {"api", "label"} and (not change or name in form.changed_data)
        }
        openapi = form.cleaned_data.get("openapi_file")
        if openapi is not None:
            fields["openapi"] = openapi
        upstreams = form.cleaned_data["upstreams_text"]
        if change:
            services.version_update(version=obj, actor=admin_user(request), upstreams=upstreams, **fields)
        else:
            created = services.version_create(
                api=form.cleaned_data["api"],
                label=form.cleaned_data["label"],
                upstreams=upstreams,
                actor=admin_user(request),
                **fields,
            )
            obj.pk = created.pk

    def _transition(
        self,
        request: HttpRequest,
        queryset: QuerySet[ApiVersion],
        to_state: str,
        *,
        sunset_at: dt.datetime | None = None,
    ) -> None:
        actor = admin_user(request)
        run_action(
            request,
            queryset,
            lambda v: services.version_transition(version=v, to_state=to_state, actor=actor, sunset_at=sunset_at),
            to_state,
        )

    @admin.action(description="Publish selected versions")
    def versions_publish(self, request: HttpRequest, queryset: QuerySet[ApiVersion]) -> None:
        self._transition(request, queryset, LifecycleState.PUBLISHED)

    @admin.action(description="Deprecate selected versions (sunset in N days)")
    def versions_deprecate(self, request: HttpRequest, queryset: QuerySet[ApiVersion]) -> None:
        days = request.POST.get("sunset_in_days") or "90"
        sunset = timezone.now() + dt.timedelta(days=int(days)) if days.isdigit() else None
        self._transition(request, queryset, LifecycleState.DEPRECATED, sunset_at=sunset)

    @admin.action(description="Retire selected versions (callers get 410)")
    def versions_retire(self, request: HttpRequest, queryset: QuerySet[ApiVersion]) -> None:
        self._transition(request, queryset, LifecycleState.RETIRED)
