from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


def test_it_emails_a_link_that_sets_a_new_password(client: Any, alice: Any, mailoutbox: Any) -> None:
    response = client.post("/accounts/password_reset/", {"email": alice.email}, follow=True)
    assert "If an account uses that address" in response.content.decode()
    assert len(mailoutbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mailoutbox[0].body)
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert "Your password is set" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_it_answers_the_same_for_an_unknown_email(client: Any, mailoutbox: Any) -> None:
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.test"}, follow=True)
    assert "If an account uses that address" in response.content.decode()
    assert mailoutbox == []


def test_a_used_or_forged_link_says_so(client: Any, alice: Any) -> None:
    response = client.get("/accounts/reset/MQ/forged-token/")
    assert response.status_code == 200
    assert "This link is not valid" in response.content.decode()
