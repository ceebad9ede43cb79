"""The plan-limit fields, defined once.

Adding a limit means one line in ``LIMITS`` (plus gateway/contract.py's ``Limits``,
which a test keeps in step, and a migration). From this list come the Plan and
Override columns (``PlanLimits``, ``OverrideLimits``), the services' field lists,
the API serializers, the admin, the publisher's ``contract.Limits`` and the plan table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.validators import MinValueValidator
from django.db import models

MAX_INT = 2_147_483_647
MAX_BIGINT = 9_223_372_036_854_775_807


@dataclass(frozen=True)
class Limit:
    name: str
    column: str  # the plan table's column; limits sharing one are shown one per line
    unit: str  # shown after the value in the plan table
    big: bool = False  # counts that can pass 2**31 need a 64-bit column
    # A ceiling: None means unlimited, the least is 1, and the admin's override action
    # scales it. Otherwise an allowance on top (burst): on a plan never None, 0 by default.
    ceiling: bool = True
    help_text: str = ""

    @property
    def min_value(self) -> int:
        return 1 if self.ceiling else 0

    @property
    def max_value(self) -> int:
        return MAX_BIGINT if self.big else MAX_INT

    def display(self, value: int | None) -> str:
        """As the plan table shows it: "1,000 / day", "Unlimited / s"; an allowance bare."""
        if not self.ceiling:
            return str(value)
        shown = "Unlimited" if value is None else f"{value:,}"
        return f"{shown} {self.unit}" if self.unit else shown


LIMITS = (
    Limit("rate_per_second", column="Rate limit", unit="/ s"),
    Limit("rate_per_minute", column="Rate limit", unit="/ min"),
    Limit(
        "burst", column="Burst", unit="", ceiling=False,
        help_text="Most requests admitted at once (the per-second bucket's depth); 0 = one second's rate.",
    ),
    Limit("quota_per_day", column="Quota", unit="/ day", big=True),
    Limit("quota_per_month", column="Quota", unit="/ month", big=True),
)
LIMIT_FIELDS = [limit.name for limit in LIMITS]
CEILING_FIELDS = [limit.name for limit in LIMITS if limit.ceiling]


def limit_columns() -> list[tuple[str, list[Limit]]]:
    """The plan table's limit columns in order, each with its limits."""
    columns: dict[str, list[Limit]] = {}
    for limit in LIMITS:
        columns.setdefault(limit.column, []).append(limit)
    return list(columns.items())


def _model_field(limit: Limit, *, nullable: bool) -> models.Field[int | None, int | None]:
    field_class = models.PositiveBigIntegerField if limit.big else models.PositiveIntegerField
    validators = [MinValueValidator(1)] if limit.ceiling else []
    if limit.ceiling or nullable:
        return field_class(null=True, blank=True, validators=validators)
    return field_class(default=0, help_text=limit.help_text)


def _abstract_model(name: str, *, nullable: bool, doc: str) -> type[models.Model]:
    attrs: dict[str, object] = {limit.name: _model_field(limit, nullable=nullable) for limit in LIMITS}
    attrs.update(__module__=__name__, __doc__=doc, Meta=type("Meta", (), {"abstract": True}))
    return type(name, (models.Model,), attrs)


if TYPE_CHECKING:
    # mypy and the django-stubs plugin read class bodies, not type(): for them only, the same
    # columns spelled out. tests/portal/test_plan_limit_types_name_the_limits.py checks that
    # they name exactly LIMITS, with the same column types and nullability.

    class PlanLimits(models.Model):
        rate_per_second = models.PositiveIntegerField(null=True)
        rate_per_minute = models.PositiveIntegerField(null=True)
        burst = models.PositiveIntegerField()
        quota_per_day = models.PositiveBigIntegerField(null=True)
        quota_per_month = models.PositiveBigIntegerField(null=True)

        class Meta:
            abstract = True

    class OverrideLimits(models.Model):
        rate_per_second = models.PositiveIntegerField(null=True)
        rate_per_minute = models.PositiveIntegerField(null=True)
        burst = models.PositiveIntegerField(null=True)
        quota_per_day = models.PositiveBigIntegerField(null=True)
        quota_per_month = models.PositiveBigIntegerField(null=True)

        class Meta:
            abstract = True

else:
    # Built from LIMITS, so the columns match what the migrations made: checked by
    # tests/portal/test_migrations_are_complete.py.
    PlanLimits = _abstract_model(
        "PlanLimits", nullable=False, doc="A plan's limits, per subscription. None means unlimited in that dimension."
    )
    OverrideLimits = _abstract_model(
        "OverrideLimits", nullable=True, doc="An override's limits. None keeps the plan's value in that dimension."
    )
