from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from portal.accounts.selectors import organizations_all

if TYPE_CHECKING:
    from portal.accounts.models import Organization

GRACE_CHOICES = [
    ("0", "No grace: the old key stops working now"),
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
]


class ApplicationForm(forms.Form):
    # The caller's organizations replace this placeholder in __init__.
    organization = forms.ModelChoiceField(queryset=organizations_all().none(), empty_label=None)
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)

    def __init__(
        self,
        *args: Any,
        organizations: QuerySet[Organization] | None = None,
        editing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["organization"]
        else:
            field = self.fields["organization"]
            assert isinstance(field, forms.ModelChoiceField)  # declared above; narrows Field for mypy
            field.queryset = organizations


class OnceForm(forms.Form):
    """Carries a one-time token so that reloading the page that showed a secret (which
    resubmits the POST) does not create a second credential."""

    once = forms.CharField(widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex)


class KeyIssueForm(OnceForm):
    label = forms.CharField(max_length=80, required=False, help_text="For you, e.g. “production server”.")
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        help_text="Optional. The key stops working at the start of this day (UTC).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_expires_on(self) -> dt.date | None:
        value: dt.date | None = self.cleaned_data.get("expires_on")
        if value is not None and value <= timezone.now().date():
            raise forms.ValidationError("Choose a date after today.")
        if value is not None and value.year > 9000:
            raise forms.ValidationError("Choose an earlier date.")
        return value

    def expires_at(self) -> dt.datetime | None:
        value = self.cleaned_data.get("expires_on")
        return dt.datetime.combine(value, dt.time.min, tzinfo=dt.UTC) if value else None


class KeyRotateForm(OnceForm):
    grace_seconds = forms.TypedChoiceField(
        choices=GRACE_CHOICES,
        coerce=int,
        initial="86400",
        label="Grace period",
        help_text="How long the old key keeps working, so that you can deploy the new one.",
    )
