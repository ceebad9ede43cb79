from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_the_dashboard_has_an_empty_state_with_a_next_step(client: Any, alice: Any) -> None:
    client.force_login(alice)
    body = client.get("/dashboard/").content.decode()
    assert "No applications yet — create one." in body
    assert 'href="/applications/new/"' in body


def test_it_creates_an_application_in_one_of_my_organizations(client: Any, alice: Any, acme: Any) -> None:
    from portal.keys.models import Application

    client.force_login(alice)
    response = client.post("/applications/new/", {"organization": acme.pk, "name": "Shop", "description": "x"})
    application = Application.objects.get(name="Shop")
    assert response["Location"] == f"/applications/{application.pk}/"
    assert application.organization == acme


def test_it_refuses_an_organization_i_do_not_belong_to(client: Any, alice: Any, globex: Any) -> None:
    from portal.keys.models import Application

    client.force_login(alice)
    response = client.post("/applications/new/", {"organization": globex.pk, "name": "Sneaky"})
    assert response.status_code == 200
    assert response.context["form"].errors["organization"]
    assert not Application.objects.filter(name="Sneaky").exists()


def test_a_missing_name_is_shown_next_to_the_field(client: Any, alice: Any, acme: Any) -> None:
    client.force_login(alice)
    response = client.post("/applications/new/", {"organization": acme.pk, "name": ""})
    assert response.context["form"].errors["name"] == ["This field is required."]


def test_it_edits_an_application(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    response = client.post(f"/applications/{alice_app.pk}/edit/", {"name": "Acme Store", "description": "new"},
                           follow=True)
    assert "Application saved." in response.content.decode()
    alice_app.refresh_from_db()
    assert alice_app.name == "Acme Store"


def test_delete_asks_first_then_deletes(client: Any, alice: Any, alice_app: Any) -> None:
    from portal.keys.models import Application

    client.force_login(alice)
    assert "Delete Acme Shop?" in client.get(f"/applications/{alice_app.pk}/delete/").content.decode()
    assert Application.objects.filter(pk=alice_app.pk).exists()
    response = client.post(f"/applications/{alice_app.pk}/delete/", follow=True)
    assert "deleted" in response.content.decode()
    assert not Application.objects.filter(pk=alice_app.pk).exists()


def test_a_user_without_organization_is_sent_to_create_one(client: Any, db: Any) -> None:
    from portal.accounts.models import User

    loner = User.objects.create_user(email="loner@example.test", password="x", email_verified=True)
    client.force_login(loner)
    response = client.get("/applications/new/")
    assert response["Location"] == "/organizations/new/"


def test_an_operators_dashboard_lists_only_their_own_organizations_applications(
    client: Any, olivia: Any, alice_app: Any
) -> None:
    client.force_login(olivia)
    body = client.get("/dashboard/").content.decode()
    assert "Acme Shop" not in body
    assert "No applications yet — create one." in body
    assert client.get(f"/applications/{alice_app.pk}/").status_code == 200  # still reachable, as in the admin
