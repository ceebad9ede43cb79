"""The plan-limit fields are listed once (portal/plans/limits.py); gateway/contract.py's
Limits is the other side of the wire and must name the same fields, with the same defaults."""

from __future__ import annotations

import dataclasses

from gateway import contract
from portal.plans.limits import LIMIT_FIELDS, LIMITS
from portal.plans.models import Override, Plan


def test_the_portal_and_the_contract_name_the_same_limits_in_the_same_order():
    assert [field.name for field in dataclasses.fields(contract.Limits)] == LIMIT_FIELDS


def test_a_ceiling_defaults_to_unlimited_and_an_allowance_to_zero_on_both_sides():
    defaults = {field.name: field.default for field in dataclasses.fields(contract.Limits)}
    for limit in LIMITS:
        plan_field = Plan._meta.get_field(limit.name)
        if limit.ceiling:
            assert defaults[limit.name] is None
            assert plan_field.null
        else:
            assert defaults[limit.name] == 0
            assert not plan_field.null
            assert plan_field.default == 0


def test_every_limit_is_a_column_of_plans_and_a_nullable_one_of_overrides():
    for name in LIMIT_FIELDS:
        assert Plan._meta.get_field(name).concrete
        assert Override._meta.get_field(name).null
