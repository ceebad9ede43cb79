"""django-filter pieces for the REST API: a query parameter that cannot be read is a
400, never silently dropped (django-filter's default for choices and booleans)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError


class StrictBooleanField(forms.NullBooleanField):
    # A text input passes the raw value on; the default select maps anything unknown to None.
    widget = forms.TextInput

    # Django's NullBooleanField.to_python returns None too; django-stubs types only BooleanField's.
    def to_python(self, value: object) -> bool | None:  # type: ignore[override]
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return bool(value == "true")
        raise ValidationError("Use true or false.", code="invalid")

    def validate(self, value: object) -> None:
        return None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IdFilter(django_filters.NumberFilter):
    """An integer id: the default NumberFilter reads decimals such as 1e120, which no database column holds."""

    # The stubs pin NumberFilter to DecimalField; django-filter takes any form field here.
    field_class = forms.IntegerField  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class StrictFilterSet(django_filters.FilterSet):
    """An empty value is only meaningful for free text; for a choice, number, date or
    boolean it is a mistake, and answering with everything would hide it."""

    def is_valid(self) -> bool:
        valid = bool(super().is_valid())
        data = self.data or {}  # django-filter stores {} for None, which the stubs do not know
        for name, declared in self.filters.items():
            if type(declared) is not django_filters.CharFilter and data.get(name) == "":
                self.form.add_error(name, "Must not be empty.")
                valid = False
        return valid


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time converted to UTC here. Python accepts UTC offsets up to
    ±23:59 and PostgreSQL only up to ±15:59, so "+22:06" passed through was a 500; and a
    date at the edge of year 1 or 9999 may not survive the conversion at all (a 400)."""

    def to_python(self, value: str | dt.datetime | dt.date | None) -> dt.datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("This date cannot be expressed in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
