from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import QuerySet

from portal.accounts.selectors import organizations_all
from portal.webhooks.events import EVENT_TYPES, event_types_for

if TYPE_CHECKING:
    from portal.accounts.models import Organization


def _event_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} — {EVENT_TYPES[name].description}") for name in event_types_for(operator=False)]


class EndpointForm(forms.Form):
    # The caller's organizations replace this placeholder in __init__.
    organization = forms.ModelChoiceField(queryset=organizations_all().none(), empty_label=None)
    url = forms.CharField(
        label="URL", max_length=2000, help_text="Where Tollway POSTs events (https).",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/tollway"}),
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label="Events", choices=_event_choices, widget=forms.CheckboxSelectMultiple,
        help_text="The event types this endpoint receives.",
    )

    def __init__(
        self, *args: Any, organizations: QuerySet[Organization] | None = None, editing: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["organization"]
        else:
            field = self.fields["organization"]
            assert isinstance(field, forms.ModelChoiceField)  # declared above; narrows Field for mypy
            field.queryset = organizations


class OnceForm(forms.Form):
    """A one-time token: reloading the page that showed a secret must not mint another."""

    once = forms.CharField(widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex)


class EndpointCreateForm(EndpointForm, OnceForm):
    pass
