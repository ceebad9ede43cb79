"""axe-core (pinned in tests/browser/package.json, installed by `make test`) finds no WCAG
2 A/AA violation on the portal's main pages, signed out and signed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser.conftest import Browsing, log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _violations(page: Any, exclude: tuple[str, ...] = ()) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async ([tags, exclude]) => {
            const context = exclude.length ? {exclude: exclude.map(s => [s])} : document;
            const r = await axe.run(context, {runOnly: {type: "tag", values: tags}});
            return r.violations.map(
                v => v.id + ": " + v.help + " (" + v.nodes.map(n => n.target.join(" ")).join(", ") + ")"
            );
        }""",
        [WCAG_AA, list(exclude)],
    )
    return list(result)


def test_main_pages_have_no_wcag_aa_violations(
    browsing: Browsing, alice: Any, alice_app: Any, free_plan: Any, echo_api: Any, olivia: Any
) -> None:
    from portal.catalog import services as catalog
    from portal.keys import services as keys
    from portal.plans import services as plans

    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (cd tests/browser && npm ci)")
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    keys.api_key_issue(application=alice_app, label="ci", actor=alice)
    # Traffic for the usage page's reconciliation and breakdowns, and an OpenAPI
    # document for the reference's code samples.
    from tests.browser.test_developer_usage_and_samples import ECHO_OPENAPI, _seed_usage

    _seed_usage(alice_app)
    catalog.version_update(version=echo_api.versions.get(label="v2"), actor=olivia,
                           openapi=yaml.safe_load(ECHO_OPENAPI.read_text()))

    # axe is injected as a script, which the portal's own CSP would (rightly) refuse.
    context = browsing.browser.new_context(base_url=browsing.base_url, bypass_csp=True)
    page = context.new_page()
    browsing.pages.append(page)
    found: dict[str, list[str]] = {}
    public = ["/", "/apis/echo/", "/apis/echo/v1/", "/apis/echo/v2/reference/", "/accounts/signup/", "/accounts/login/",
              "/accounts/password_reset/", "/no-such-page/"]
    for path in public:
        page.goto(path)
        found[path] = _violations(page, exclude=("#swagger-ui",) if path.endswith("/reference/") else ())
    log_in(page, alice.email, PASSWORD)
    for path in ["/dashboard/", f"/applications/{alice_app.pk}/", f"/applications/{alice_app.pk}/edit/",
                 "/applications/new/", "/subscriptions/new/", "/accounts/profile/", "/organizations/acme/",
                 f"/applications/{alice_app.pk}/keys/{alice_app.keys.get().pk}/rotate/",
                 f"/analytics/usage/?application={alice_app.pk}"]:
        page.goto(path)
        found[path] = _violations(page)
    page.goto(f"/applications/{alice_app.pk}/")
    page.get_by_role("button", name="Create key").click()
    found["key shown once"] = _violations(page)
    page.goto("/apis/echo/v2/reference/")
    page.locator(".code-samples summary").first.click()  # an open operation: samples and copy buttons
    # Swagger UI's own rendering of a document (third-party markup) fails colour contrast
    # in places; the portal's part of the page (key picker, code samples) is checked.
    found["reference, samples open"] = _violations(page, exclude=("#swagger-ui",))
    catalog.version_transition(version=echo_api.versions.get(label="v1"), to_state="retired", actor=olivia)
    for path in ["/apis/echo/v1/", "/apis/echo/v1/reference/"]:
        page.goto(path)
        found[f"retired {path}"] = _violations(page)
    assert {path: v for path, v in found.items() if v} == {}
