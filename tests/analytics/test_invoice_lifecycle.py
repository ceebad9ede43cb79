"""draft -> issued (numbered TW-<year>-<6 digits>, gapless per year) -> paid or void;
corrections by credit note; a number never changes once issued."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import transaction

from analytics.billing import services as billing
from analytics.models import CreditNote, Invoice, InvoiceNumberCounter, InvoiceStatus
from portal.core.errors import ApplicationError, InvalidTransition
from tests.analytics.billing_fixtures import EXPECTED_TOTAL, OCT, issued_october, meter, subscribe

pytestmark = pytest.mark.django_db


def test_issued_invoices_are_numbered_in_sequence_per_year(acme, alice_app, charlie_app, pro_plan, free_plan):
    invoice = issued_october(alice_app, pro_plan)
    meter(subscribe(charlie_app, pro_plan), 10)
    dec = datetime(2026, 12, 1, tzinfo=UTC)
    billing.billing_period_close(month=date(2026, 11, 1), now=dec)
    billing.billing_period_close(month=date(2026, 12, 1), now=datetime(2027, 1, 1, 2, tzinfo=UTC))
    numbers = list(Invoice.objects.order_by("finalized_at", "organization_id").values_list("number", flat=True))
    assert invoice.number == "TW-2026-000001"
    assert invoice.total == EXPECTED_TOTAL
    assert invoice.status == InvoiceStatus.FINAL
    # November was issued in December 2026 (both organizations), December in January 2027: a new year restarts.
    assert numbers == ["TW-2026-000001", "TW-2026-000002", "TW-2026-000003", "TW-2027-000001", "TW-2027-000002"]


def test_a_number_never_changes_once_issued(acme, alice_app, pro_plan, olivia):
    invoice = issued_october(alice_app, pro_plan)
    billing.billing_period_close(month=OCT)  # closing again changes nothing
    billing.invoice_refresh(organization_id=acme.pk, month=OCT)
    invoice.refresh_from_db()
    assert invoice.number == "TW-2026-000001"
    billing.invoice_mark_paid(invoice=invoice, actor=olivia)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, invoice.total) == (InvoiceStatus.PAID, "TW-2026-000001", EXPECTED_TOTAL)


def test_voiding_issues_a_credit_note_for_the_rest(acme, alice_app, pro_plan, olivia):
    invoice = issued_october(alice_app, pro_plan)
    note = billing.invoice_void(invoice=invoice, actor=olivia, reason="Billed to the wrong organization",
                                now=datetime(2026, 11, 3, tzinfo=UTC))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert invoice.number == "TW-2026-000001"  # kept: the sequence has no gaps
    assert note is not None
    assert (note.number, note.amount, note.invoice_id) == ("TW-2026-000002", -EXPECTED_TOTAL, invoice.pk)
    with pytest.raises(InvalidTransition):
        billing.invoice_mark_paid(invoice=invoice, actor=olivia)


def test_a_correction_is_a_credit_note_and_cannot_exceed_what_is_left(acme, alice_app, pro_plan, olivia):
    invoice = issued_october(alice_app, pro_plan)
    billing.invoice_mark_paid(invoice=invoice, actor=olivia)
    note = billing.credit_note_issue(invoice=invoice, actor=olivia, amount=Decimal("9.12"), reason="Goodwill")
    assert note.amount == Decimal("-9.12")
    assert billing.credit_total(invoice) == Decimal("9.12")
    with pytest.raises(ApplicationError) as too_much:
        billing.credit_note_issue(invoice=invoice, actor=olivia, amount=Decimal("40.01"), reason="Too much")
    assert "40.00" in too_much.value.fields["amount"][0]
    with pytest.raises(ApplicationError):
        billing.credit_note_issue(invoice=invoice, actor=olivia, amount=Decimal("0.001"), reason="Sub-cent")
    with pytest.raises(ApplicationError):
        billing.credit_note_issue(invoice=invoice, actor=olivia, amount=Decimal("1"), reason="  ")
    invoice.refresh_from_db()
    assert invoice.total == EXPECTED_TOTAL  # the invoice itself never changes
    assert CreditNote.objects.count() == 1


def test_a_draft_is_neither_paid_voided_nor_credited(acme, alice_app, pro_plan, olivia):
    sub = subscribe(alice_app, pro_plan)
    meter(sub, 3)
    [draft] = billing.invoice_refresh(organization_id=acme.pk, month=OCT)
    for attempt in (
        lambda: billing.invoice_mark_paid(invoice=draft, actor=olivia),
        lambda: billing.invoice_void(invoice=draft, actor=olivia, reason="x"),
        lambda: billing.credit_note_issue(invoice=draft, actor=olivia, amount=Decimal("1"), reason="x"),
    ):
        with pytest.raises(InvalidTransition):
            attempt()
    assert not InvoiceNumberCounter.objects.exists()


def test_a_rolled_back_issue_gives_its_number_back(db):
    def issue_then_fail() -> None:
        with transaction.atomic():
            assert billing.invoice_number_next(year=2026) == "TW-2026-000001"
            raise RuntimeError("the issuing transaction fails after taking a number")

    with pytest.raises(RuntimeError):
        issue_then_fail()
    with transaction.atomic():
        assert billing.invoice_number_next(year=2026) == "TW-2026-000001"
