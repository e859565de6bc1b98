"""A student's whole journey in the portal, in a real browser: the invitation e-mail,
activation, signing in, the registration form (an inline error first, a draft kept
across a reload, the confirmation step, the one submission), the documents and the
card photo with their progress bars and the automatic photo verdict, the status
turning Completed without a reload once staff have reviewed (through the APIs), the
inbox with the milestone messages, and the card with a slot booked and rebooked.
Every student page is checked with axe; one in Traditional Chinese and one at
phone width."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.smtpsink import text_body, wait_for_mail
from opr_shared.testing.browser import accessibility_violations, screenshot
from opr_shared.testing.journey import (
    add_collection_windows,
    bearer,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.samples import face_photo
from PIL import Image
from playwright.async_api import Page, Route, expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
PASSWORD = "Correct-Horse-Battery-9"

# Records the values an upload's progress bar goes through.
WATCH_PROGRESS = """(barId) => {
  window.__progress = [];
  const seen = () => {
    const bar = document.getElementById(barId);
    const value = bar && bar.getAttribute('aria-valuenow');
    if (value !== null && window.__progress[window.__progress.length - 1] !== value) {
      window.__progress.push(value);
    }
  };
  new MutationObserver(seen).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow']});
}"""


def scanned_id_card_pdf(seed: int = 11) -> bytes:
    """A scanned document as a phone scanner app makes it: a picture inside a PDF."""
    rng = np.random.default_rng(seed)
    pixels = np.full((877, 620, 3), 232, dtype=np.uint8)
    for row in range(60, 817, 24):
        pixels[row : row + 8, 40 : 40 + int(rng.integers(200, 540))] = 35
    noisy = np.clip(pixels.astype(int) + rng.integers(-10, 10, pixels.shape), 0, 255)
    out = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(out, "PDF", resolution=72)
    return out.getvalue()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def cat_photo() -> bytes:
    """Right size and proportions, but no human face."""
    from skimage import data

    cat = Image.fromarray(data.chelsea())  # type: ignore[no-untyped-call]
    return jpeg(cat.crop((120, 0, 360, 300)).resize((480, 600)))


async def add_collection_day(client: httpx.AsyncClient, office: dict[str, str]) -> str:
    """Make sure the schedule holds two slots on the day other tests of the card office
    use; answer the day. The student's booking ends on the 09:00 slot, which those
    tests keep."""
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    await add_collection_windows(
        client, office, day, [("09:00", "10:00", 500), ("10:00", "11:00", 500)]
    )
    return day


async def go(page: Page, section: str) -> None:
    """Move to a section with the student navigation, from the keyboard."""
    nav = page.get_by_role("navigation", name="Registration sections")
    link = nav.get_by_role("link", name=section, exact=True)
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(link).to_have_attribute("aria-current", "page")
    # Focus moves to the page's content for keyboard and screen-reader users.
    await expect(page.locator("main")).to_be_focused()


async def test_a_student_goes_from_the_invitation_to_a_card_slot(system: Stack, page: Page) -> None:
    number = new_student_no()
    row = roster_row(number)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        office = bearer(await staff_token(client, "card_office"))
        imported = await client.post(
            "/api/identity/admissions/import?invite=true", json=[row], headers=registry
        )
        assert imported.status_code == 200, imported.text
        day = await add_collection_day(client, office)

        # -- the invitation, activation and signing in --------------------------------
        assert system.maildir is not None
        mail = await wait_for_mail(system.maildir, lambda m: str(m["To"]) == row["personal_email"])
        link = re.search(r"https?://\S+/activate\?token=[\w-]+", text_body(mail))
        assert link is not None
        await page.goto(link.group(0))
        await page.get_by_label("New password").fill(PASSWORD)
        await page.get_by_label("Confirm the password").fill(PASSWORD)
        await page.get_by_role("button", name="Activate").click()
        status = page.get_by_role("status")
        await expect(status).to_contain_text("Your account is active")
        found = re.search(r"\S+@connect\.\S+?(?=\.$|\s|$)", await status.inner_text())
        assert found is not None
        assert found.group(0).startswith(number), found.group(0)
        await page.get_by_role("button", name="Continue to your registration").click()
        await expect(page).to_have_url(re.compile(r"/me$"))
        await expect(page.locator("[data-status]")).to_have_text("In Progress")
        form_item = page.locator("tr[data-item=registration_form]")
        await expect(form_item.get_by_role("link", name="Fill in the form")).to_be_visible()
        assert await accessibility_violations(page) == []
        await screenshot(page, "01-dashboard")

        # -- the form: an inline error first, then a draft kept across a reload ---------
        await form_item.get_by_role("link", name="Fill in the form").click()
        await expect(page.get_by_role("heading", name="Registration form")).to_be_visible()
        await expect(page.get_by_label("Surname", exact=True)).to_have_value("Wong")
        await page.get_by_label("Residency status").select_option("hk_permanent")
        hkid = page.get_by_label("HKID number", exact=True)
        await hkid.fill("A123456(4)")
        await hkid.blur()
        await expect(page.locator("#f-hkid_number-error")).to_have_text(
            "The check digit of this HKID number is wrong: please check the number."
        )
        await expect(hkid).to_have_attribute("aria-invalid", "true")
        assert await accessibility_violations(page) == []
        await screenshot(page, "02-form-inline-error")

        await hkid.fill("a 123456 3")  # written loosely; the check digit is right
        await expect(page.locator("#f-hkid_number-error")).to_have_count(0)
        await page.get_by_label("Gender").select_option("male")
        await page.get_by_label("Nationality").fill("chn")
        await page.get_by_label("Address line 1").fill("1 Clear Water Bay Road")
        await page.get_by_label("District").fill("Sai Kung")
        await page.get_by_label("Country or region").fill("Hong Kong")
        await page.get_by_label("Emergency contact: name").fill("Wong Tai Man")
        await page.get_by_label("Emergency contact: relationship").fill("Father")
        await page.get_by_label("Emergency contact: phone").fill("6123 4567")

        # Should the service ever judge a field differently from the page, its reason
        # is shown next to that field: here the number is altered on its way out.
        async def altered(route: Route) -> None:
            body = json.loads(route.request.post_data or "{}")
            body["hkid_number"] = "A123456(4)"
            await route.continue_(post_data=json.dumps(body))

        await page.route("**/api/registration/me/form", altered)
        await page.get_by_role("button", name="Save draft").click()
        await expect(page.locator("#f-hkid_number-error")).to_have_text(
            "the check digit of this HKID number is wrong: please check the number"
        )
        await expect(page.get_by_role("alert")).to_contain_text("HKID number")
        await page.unroute("**/api/registration/me/form", altered)

        await page.get_by_role("button", name="Save draft").click()
        await expect(page.get_by_role("status")).to_contain_text("Draft saved")
        await expect(hkid).to_have_value("A123456(3)")  # as the service keeps it

        await page.reload()
        await expect(page.get_by_label("HKID number", exact=True)).to_have_value("A123456(3)")
        await expect(page.get_by_label("Address line 1")).to_have_value("1 Clear Water Bay Road")
        await expect(page.get_by_label("Emergency contact: phone")).to_have_value("61234567")

        # The same page in Traditional Chinese.
        await page.get_by_role("button", name="中文").click()
        await expect(page.get_by_role("heading", name="註冊表格", exact=True)).to_be_visible()
        await expect(page.get_by_label("香港身份證號碼")).to_have_value("A123456(3)")
        assert await accessibility_violations(page) == []
        await screenshot(page, "03-form-zh-hant")
        await page.get_by_role("button", name="English").click()

        # Without the declaration the form is not offered for submission.
        await page.get_by_role("button", name="Review and submit").click()
        summary = page.get_by_role("alert")
        await expect(summary).to_contain_text("You must declare")
        await page.get_by_label("I declare that the information given is true").check()
        await page.get_by_role("button", name="Review and submit").click()
        confirm = page.get_by_role("heading", name="Check your registration form")
        await expect(confirm).to_be_visible()
        review = page.get_by_test_id("form-summary")
        await expect(review.locator("[data-field=hkid_number]")).to_have_text("A123456(3)")
        await expect(review.locator("[data-field=residency]")).to_have_text(
            "Hong Kong permanent resident"
        )
        assert await accessibility_violations(page) == []
        await screenshot(page, "04-form-confirm")
        await page.get_by_role("button", name="Submit the registration form").click()
        await expect(page.locator("[data-form-state=submitted]")).to_contain_text("Submitted on")
        await expect(page.get_by_role("textbox")).to_have_count(0)  # read-only now
        await expect(review.locator("[data-field=addr_line1]")).to_have_text(
            "1 Clear Water Bay Road"
        )
        await screenshot(page, "05-form-submitted")
        token = await page.evaluate("sessionStorage.getItem('opr.token')")
        student = bearer(token)
        again = await client.post("/api/registration/me/submit", headers=student, json={})
        assert again.status_code == 409  # submitted once, as shown

        # -- documents, with the progress bar ---------------------------------------
        await go(page, "Documents and photo")
        await expect(page.get_by_label("Document type")).to_have_value("hk_permanent_id_card")
        await page.evaluate(WATCH_PROGRESS, "doc-progress")
        await page.get_by_label("File", exact=True).set_input_files(
            {"name": "hkid.pdf", "mimeType": "application/pdf", "buffer": scanned_id_card_pdf()}
        )
        await page.get_by_role("button", name="Upload", exact=True).click()
        await expect(page.get_by_text("hkid.pdf was uploaded")).to_be_visible()
        bar = page.get_by_role("progressbar", name="Document upload progress")
        await expect(bar).to_have_attribute("aria-valuenow", "100")
        progress = await page.evaluate("window.__progress")
        assert progress[0] == "0", progress
        assert progress[-1] == "100", progress
        uploaded = page.locator("tr[data-doc-type=hk_permanent_id_card]")
        await expect(uploaded).to_contain_text("Received, being checked")

        # The registry rejects it with a reason: the page shows it without a reload,
        # and the student sends a second version.
        v1 = (await client.get("/api/documents/me/documents", headers=student)).json()[0]
        reason = "The card is cut off at the bottom: scan the whole card."
        rejected = await client.post(
            f"/api/documents/documents/{v1['id']}/reject",
            json={"reason": reason},
            headers=registry,
        )
        assert rejected.status_code == 200, rejected.text
        version_one = page.locator(f"tr[data-doc-id='{v1['id']}']")
        # The page asks again every 5 s: the change shows within one refresh and
        # its answer, which on a busy machine is more than the default 5 s wait.
        await expect(version_one).to_have_attribute("data-status", "rejected", timeout=15_000)
        await expect(version_one).to_contain_text(f"Reason: {reason}")
        announced = page.locator("[aria-live=polite]")
        await expect(announced).to_have_text("Hong Kong Permanent Identity Card: Rejected")
        await expect(page.get_by_label("Document type")).to_have_value("hk_permanent_id_card")
        await page.get_by_label("File", exact=True).set_input_files(
            {
                "name": "hkid-whole.pdf",
                "mimeType": "application/pdf",
                "buffer": scanned_id_card_pdf(12),
            }
        )
        await page.get_by_role("button", name="Upload", exact=True).click()
        await expect(page.get_by_text("hkid-whole.pdf was uploaded")).to_be_visible()
        pending = page.locator("tr[data-doc-type=hk_permanent_id_card][data-status=pending]")
        await expect(pending).to_contain_text("version 2")

        # -- the photo: a busy service's answer (503, nothing stored) is explained in
        # the page's language; one without a face is refused with its reason, then a
        # real one is taken.
        photo_input = page.get_by_label("Photo file")

        async def busy(route: Route) -> None:
            await route.fulfill(
                status=503,
                headers={"Retry-After": "5"},
                json={"detail": {"code": "busy", "message": "(the service's own words)"}},
            )

        await page.route("**/api/documents/me/photo", busy)
        await photo_input.set_input_files(
            {"name": "me.jpg", "mimeType": "image/jpeg", "buffer": face_photo()}
        )
        await page.get_by_role("button", name="Upload photo").click()
        await expect(page.get_by_role("alert").filter(has_text="Many files")).to_have_text(
            "Many files are arriving at once, so this one was not stored. "
            "Send it again in a few seconds."
        )
        await page.unroute("**/api/documents/me/photo", busy)

        await page.evaluate(WATCH_PROGRESS, "photo-progress")
        await photo_input.set_input_files(
            {"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": cat_photo()}
        )
        await page.get_by_role("button", name="Upload photo").click()
        verdict = page.locator("[data-verdict]")
        await expect(verdict).to_have_attribute("data-verdict", "failed")
        await expect(verdict.locator("[data-reason=no_face]")).to_contain_text("No face was found")
        photo_bar = page.get_by_role("progressbar", name="Photo upload progress")
        await expect(photo_bar).to_have_attribute("aria-valuenow", "100")
        assert await accessibility_violations(page) == []
        await screenshot(page, "06-photo-refused")
        await page.set_viewport_size({"width": 390, "height": 844})
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await screenshot(page, "06-photo-refused-phone")
        await page.set_viewport_size({"width": 1280, "height": 900})
        await photo_input.set_input_files(
            {"name": "me.jpg", "mimeType": "image/jpeg", "buffer": face_photo()}
        )
        await page.get_by_role("button", name="Upload photo").click()
        await expect(verdict).to_have_attribute("data-verdict", "passed")
        await expect(page.locator("[data-photo-status=pending]")).to_be_visible()
        await screenshot(page, "07-photo-passed")

        # -- staff review (their console is tested elsewhere); the status follows ------
        await go(page, "Overview")
        await expect(page.locator("[data-status]")).to_have_text("In Progress")
        documents = (await client.get("/api/documents/me/documents", headers=student)).json()
        photos = (await client.get("/api/documents/me/photos", headers=student)).json()
        verified = await client.post(
            f"/api/documents/documents/{documents[0]['id']}/verify", json={}, headers=registry
        )
        assert verified.status_code == 200, verified.text
        approved = await client.post(
            f"/api/documents/photos/{photos[0]['id']}/approve", headers=office
        )
        assert approved.status_code == 200, approved.text
        await expect(page.locator("[data-status]")).to_have_text("Completed", timeout=45_000)
        announced = page.locator("[aria-live=polite]", has_text="Your status is now: Completed")
        await expect(announced).to_have_count(1)
        await expect(page.locator("tr[data-item=hk_permanent_id_card]")).to_contain_text("Verified")
        await screenshot(page, "08-dashboard-completed")

        # -- the card: issued, a slot offered, booked elsewhere, then rebooked ----------
        await go(page, "Student card")
        await expect(page.locator("[data-card-status]")).to_have_text(
            "Issued, ready for collection", timeout=45_000
        )
        await expect(page.get_by_test_id("card-no")).to_have_text(re.compile(r"^\d{8,16}$"))
        booked = page.get_by_test_id("booked-slot")
        await expect(booked).to_have_attribute("data-slot-id", re.compile(r"."), timeout=30_000)
        first, second = f"{day}-1000", f"{day}-0900"
        if await booked.get_attribute("data-slot-id") == first:  # offered the later one
            await page.locator(f"[data-slot='{second}'] button").click()
            await expect(booked).to_have_attribute("data-slot-id", second)
        await page.locator(f"[data-slot='{first}'] button").click()
        await expect(booked).to_have_attribute("data-slot-id", first)
        await expect(page.get_by_role("status")).to_contain_text("Booked")
        assert await accessibility_violations(page) == []
        await screenshot(page, "09-card-booked")
        await page.locator(f"[data-slot='{second}'] button").click()
        await expect(booked).to_have_attribute("data-slot-id", second)
        mine = (await client.get("/api/card/me", headers=student)).json()
        assert mine["slot"]["slot_id"] == second
        assert mine["card"]["card_no"] == await page.get_by_test_id("card-no").inner_text()

        # At phone width: nothing wider than the screen, still accessible.
        await page.set_viewport_size({"width": 390, "height": 844})
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        assert await accessibility_violations(page) == []
        await screenshot(page, "10-card-phone")
        await page.set_viewport_size({"width": 1280, "height": 900})

        # -- the inbox holds every milestone message -----------------------------------
        await go(page, "Messages")
        for template in (
            "invitation",
            "account_activated",
            "form_received",
            "registration_completed",
            "card_ready",
        ):
            await expect(page.locator(f"li[data-template={template}]").first).to_be_visible(
                timeout=45_000
            )
        message = page.locator("li[data-template=registration_completed]").first
        await expect(message).to_have_class(re.compile(r"\bunread\b"))
        await message.get_by_role("button").click()
        reader = page.get_by_role("article")
        await expect(reader.get_by_role("heading")).to_contain_text("Registration")
        await expect(reader.locator(".message-body")).to_contain_text(re.compile(r"\w{3}"))
        await expect(message).to_have_class(re.compile(r"\bread\b"))
        assert await accessibility_violations(page) == []
        await screenshot(page, "11-inbox")
