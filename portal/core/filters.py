"""django-filter pieces for the REST API: a query parameter that cannot be read is a
400, never silently dropped (django-filter's default for choices and booleans)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError


class StrictBooleanField(forms.NullBooleanField):
    # A text input passes the raw value on; the default select maps anything unknown to None.
    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return bool(value == "true")
        raise ValidationError("Use true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        return None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IdFilter(django_filters.NumberFilter):
    """An integer id: the default NumberFilter reads decimals such as 1e120, which no database column holds."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class StrictFilterSet(django_filters.FilterSet):
    """An empty value is only meaningful for free text; for a choice, number, date or
    boolean it is a mistake, and answering with everything would hide it."""

    def is_valid(self) -> bool:
        valid = bool(super().is_valid())
        for name, declared in self.filters.items():
            if type(declared) is not django_filters.CharFilter and self.data.get(name) == "":
                self.form.add_error(name, "Must not be empty.")
                valid = False
        return valid
