"""CSV and JSON exports shared by every analytics view.

CSV cells that a spreadsheet would read as a formula (=, +, -, @, tab, CR) are
prefixed with a single quote: an application name like ``=HYPERLINK(...)`` set by
one developer must not run in an operator's spreadsheet (CSV injection).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def csv_response(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe(_plain(row.get(c))) for c in columns])
    return response


def json_response(payload: object, filename: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(payload, default=_plain, indent=1), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


def export(
    request: HttpRequest, *, rows: list[dict[str, Any]], columns: Sequence[str], filename: str
) -> HttpResponse | None:
    """The export the request asks for with ?format=csv or ?format=json, else None."""
    fmt = request.GET.get("format")
    if fmt == "csv":
        return csv_response(rows, columns, filename)
    if fmt == "json":
        return json_response([{c: r.get(c) for c in columns} for r in rows], filename)
    return None
