"""What every analytics page shares: who may open it, how it renders, its charts.

The pages themselves live with their concern (reports/, billing/, deprecation/
views.py); analytics/urls.py lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
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


def month_param(request: HttpRequest) -> date:
    """?month=YYYY-MM, or the current UTC month; 404 for anything else."""
    raw = request.GET.get("month", "")
    try:
        month = datetime.strptime(raw, "%Y-%m").replace(tzinfo=UTC).date() if raw else month_start(timezone.now())
        next_month(month)  # December 9999 has no end: refuse it here, not as a 500 later
    except ValueError as exc:
        raise Http404("Bad month") from exc
    return month
