"""The portal in a real browser: signing in both ways, activation, language, accessibility."""

from __future__ import annotations

import re

import httpx
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.smtpsink import text_body, wait_for_mail
from opr_shared.testing.browser import accessibility_violations, screenshot
from opr_shared.testing.journey import (
    DEMO_STAFF,
    DEMO_STAFF_PASSWORD,
    bearer,
    new_student_no,
    roster_row,
    staff_token,
)
from playwright.async_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_sign_in_page_is_accessible_in_both_languages(system: Stack, page: Page) -> None:
    await page.goto(f"{system.gateway_url}/login")
    await expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    assert await accessibility_violations(page) == []
    await screenshot(page, "sign-in-en")

    await page.get_by_role("button", name="中文").click()
    await expect(page.get_by_role("heading", name="登入", exact=True)).to_be_visible()
    assert await page.evaluate("document.documentElement.lang") == "zh-Hant"
    assert await accessibility_violations(page) == []
    await screenshot(page, "sign-in-zh-hant")

    await page.reload()  # the choice is remembered
    await expect(page.get_by_role("heading", name="登入", exact=True)).to_be_visible()


async def test_inline_validation_before_anything_is_sent(system: Stack, page: Page) -> None:
    await page.goto(f"{system.gateway_url}/login")
    await page.get_by_label("JUPAS application no.").fill("123")
    await page.get_by_label("Date of birth (DD/MM/YYYY)").fill("2007-11-05")
    await page.get_by_role("button", name="Sign in").first.click()
    await expect(page.get_by_text("The JUPAS application number has 8 digits.")).to_be_visible()
    await expect(page.get_by_text("Enter the date as DD/MM/YYYY")).to_be_visible()
    assert await page.get_by_label("Last name / surname").get_attribute("aria-invalid") == "true"


async def test_a_student_signs_in_with_jupas_details_and_wrong_details_are_refused(
    system: Stack, page: Page
) -> None:
    row = roster_row(new_student_no())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        token = await staff_token(client, "registry_officer")
        imported = await client.post(
            "/api/identity/admissions/import", json=[row], headers=bearer(token)
        )
        assert imported.json()["created"] == 1

    await page.goto(f"{system.gateway_url}/login")
    form = page.locator("form", has=page.get_by_role("heading", name="JUPAS entrants"))
    await form.get_by_label("JUPAS application no.").fill(row["jupas_app_no"])
    await form.get_by_label("Last name / surname").fill(row["surname"].upper())
    await form.get_by_label("First name / given names").fill("Wrong")
    await form.get_by_label("Date of birth (DD/MM/YYYY)").fill(row["date_of_birth"])
    await form.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Access denied")
    await screenshot(page, "access-denied")

    # Names compare case- and space-insensitively.
    await form.get_by_label("First name / given names").fill("  siu   ming ")
    await form.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/me$"))
    await expect(page.get_by_role("heading", name="My registration")).to_be_visible()
    await expect(page.locator("[data-status]")).to_have_text("In Progress")
    await expect(page.locator("tr[data-item=registration_form]")).to_contain_text("Not yet done")
    assert await accessibility_violations(page) == []
    await screenshot(page, "student-dashboard")


async def test_the_dashboard_follows_changes_without_reloading(system: Stack, page: Page) -> None:
    row = roster_row(new_student_no())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        token = await staff_token(client, "registry_officer")
        await client.post(
            "/api/identity/admissions/import?invite=true", json=[row], headers=bearer(token)
        )
        await page.goto(f"{system.gateway_url}/login")
        form = page.locator("form", has=page.get_by_role("heading", name="JUPAS entrants"))
        await form.get_by_label("JUPAS application no.").fill(row["jupas_app_no"])
        await form.get_by_label("Last name / surname").fill(row["surname"])
        await form.get_by_label("First name / given names").fill(row["given_names"])
        await form.get_by_label("Date of birth (DD/MM/YYYY)").fill(row["date_of_birth"])
        await form.get_by_role("button", name="Sign in").click()
        account = page.locator("tr[data-item=university_account]")
        await expect(account).to_contain_text("Not yet done")

        # Elsewhere (another tab, the invitation link) the account is activated.
        assert system.maildir is not None
        mail = await wait_for_mail(system.maildir, lambda m: str(m["To"]) == row["personal_email"])
        found = re.search(r"/activate\?token=([\w-]+)", text_body(mail))
        assert found is not None
        activated = await client.post(
            "/api/identity/accounts/activate",
            json={"token": found.group(1), "password": "Correct-Horse-Battery-9"},
        )
        assert activated.status_code == 200, activated.text
    await expect(account).to_contain_text("Verified", timeout=30_000)
    await screenshot(page, "dashboard-updated")


async def test_invitation_link_activates_the_account_and_signs_in_then_email_sign_in_works(
    system: Stack, page: Page
) -> None:
    row = roster_row(new_student_no())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        token = await staff_token(client, "registry_officer")
        await client.post(
            "/api/identity/admissions/import?invite=true", json=[row], headers=bearer(token)
        )
    assert system.maildir is not None
    mail = await wait_for_mail(system.maildir, lambda m: str(m["To"]) == row["personal_email"])
    link = re.search(r"https?://\S+/activate\?token=[\w-]+", text_body(mail))
    assert link is not None

    await page.goto(link.group(0))
    await expect(
        page.get_by_role("heading", name="Activate your university account")
    ).to_be_visible()
    assert await accessibility_violations(page) == []
    password = "Correct-Horse-Battery-9"
    await page.get_by_label("New password").fill(password)
    await page.get_by_label("Confirm the password").fill(password)
    await page.get_by_role("button", name="Activate").click()
    status = page.get_by_role("status")
    await expect(status).to_contain_text("Your account is active")
    await screenshot(page, "activated")
    university_email = re.search(r"\S+@connect\.\S+?(?=\.$|\s|$)", await status.inner_text())
    assert university_email is not None

    # The activation has signed the student in: straight on to the registration.
    await expect(status).to_contain_text("you are signed in")
    await page.get_by_role("button", name="Continue to your registration").click()
    await expect(page).to_have_url(re.compile(r"/me$"))
    await expect(page.locator("[data-status]")).to_have_text("In Progress")

    # Next time: the university e-mail and the new password.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    form = page.locator("form", has=page.get_by_role("heading", name="University account or staff"))
    await form.get_by_label("Email address").fill(university_email.group(0))
    await form.get_by_label("Password", exact=True).fill(password)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/me$"))


async def test_staff_sign_in_lands_on_the_staff_side(system: Stack, page: Page) -> None:
    await page.goto(f"{system.gateway_url}/")
    form = page.locator("form", has=page.get_by_role("heading", name="University account or staff"))
    await form.get_by_label("Email address").fill(DEMO_STAFF["card_office"])
    await form.get_by_label("Password", exact=True).fill(DEMO_STAFF_PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/staff$"))
    await expect(page.get_by_text("Card office")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
