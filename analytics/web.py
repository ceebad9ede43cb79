"""What every analytics page shares: who may open it, how it renders, its charts.

The pages themselves live with their concern (reports/, billing/, deprecation/
views.py); analytics/urls.py lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from analytics.billing.rules import month_start, next_month
from portal.accounts.selectors import is_finance, is_operator

_P = ParamSpec("_P")
_R = TypeVar("_R", bound=HttpRequest)
# A page: the request first, then whatever its URL captures.
View = Callable[Concatenate[_R, _P], HttpResponse]


def operator_required(view: View[_R, _P]) -> View[_R, _P]:
    @wraps(view)
    def wrapped(request: _R, /, *args: _P.args, **kwargs: _P.kwargs) -> HttpResponse:
        if not is_operator(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def finance_required(view: View[_R, _P]) -> View[_R, _P]:
    @wraps(view)
    def wrapped(request: _R, /, *args: _P.args, **kwargs: _P.kwargs) -> HttpResponse:
        if not is_finance(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def render_page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {"is_finance": is_finance(request.user), **context})


def chart(canvas: str, kind: str, labels: list[str], datasets: list[tuple[str, list[Any]]],
          title: str) -> dict[str, Any]:
    """One Chart.js chart, as static/analytics/charts.js reads it from the page's JSON."""
    return {
        "canvas": canvas, "type": kind, "title": title, "labels": labels,
        "datasets": [{"label": name, "data": data} for name, data in datasets],
    }


class MonthForm(forms.Form):
    """?month=YYYY-MM, or the current UTC month when absent."""

    month = forms.CharField(required=False, max_length=20, label="Month")

    def clean_month(self) -> date:
        raw = self.cleaned_data["month"].strip()
        if not raw:
            return month_start(timezone.now())
        try:
            month = datetime.strptime(raw, "%Y-%m").replace(tzinfo=UTC).date()
            next_month(month)  # December 9999 has no end: refuse it here, not as a 500 later
        except ValueError as exc:
            raise forms.ValidationError("Give a month as YYYY-MM, e.g. 2026-10.", code="month") from exc
        return month


def month_form(request: HttpRequest) -> MonthForm:
    return MonthForm(request.GET)


def bad_parameters(request: HttpRequest, form: forms.Form, template: str, context: dict[str, Any]) -> HttpResponse:
    """A report asked with bad parameters: 400 with the form's errors, as JSON for an
    export (?format=csv|json), else the page itself with the errors beside the fields."""
    if request.GET.get("format") in {"csv", "json"}:
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        return JsonResponse(
            {"error": {"type": "invalid", "message": "Bad report parameters.", "fields": fields}}, status=400
        )
    response = render_page(request, template, {"month_form": form, "month": None, **context})
    response.status_code = 400
    return response
