"""Every issued invoice has a PDF (WeasyPrint) whose text, read back with pdftotext
(Debian's poppler-utils), shows the page's number, lines and totals."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal

import pytest

from analytics.billing import services as billing
from tests.analytics.billing_fixtures import EXPECTED_TOTAL, issued_october

pytestmark = pytest.mark.django_db


def _pdf_text(pdf: bytes) -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.fail("pdftotext is missing: install Debian's poppler-utils (`make test` runs bin/ensure-debs for it)")
    done = subprocess.run([exe, "-layout", "-", "-"], input=pdf, capture_output=True, check=True, timeout=30)
    return done.stdout.decode()


def _cells(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, element_id
    return match.group(1)


def test_the_pdf_shows_what_the_page_shows(client, olivia, acme, alice_app, pro_plan):
    invoice = issued_october(alice_app, pro_plan)
    billing.credit_note_issue(invoice=invoice, actor=olivia, amount=Decimal("2.50"), reason="Outage on 5 October")
    client.force_login(olivia)
    html = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert _cells(html, "invoice-total") == _cells(html, "invoice-lines-total") == str(EXPECTED_TOTAL)
    assert _cells(html, "invoice-balance") == "46.62"

    response = client.get(f"/invoices/{invoice.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = _pdf_text(response.content)
    assert "Invoice TW-2026-000001" in text
    assert "Acme" in text
    assert "October 2026" in text
    for figure in ("49.00", "0.12", "49.12", "-2.50", "46.62", "345", "245"):  # base, overage, total, note, balance
        assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", text), figure
    assert "TW-2026-000002" in text  # the credit note's number
    assert "Credit note" in text


def test_a_draft_has_no_pdf_and_nobody_else_reads_it(client, olivia, charlie, acme, alice_app, pro_plan):
    invoice = issued_october(alice_app, pro_plan)
    client.force_login(charlie)  # another organization's member
    assert client.get(f"/invoices/{invoice.pk}/pdf/").status_code == 404
    [draft] = billing.invoice_refresh(organization_id=acme.pk, month=invoice.month.replace(month=11))
    client.force_login(olivia)
    assert draft.status == "draft"
    assert client.get(f"/invoices/{draft.pk}/pdf/").status_code == 404
    assert client.get(f"/invoices/{invoice.pk}/pdf/").status_code == 200
