"""The staff console in a real browser: reviewing documents and a photo until the
student's card is handed over, a roster import with a bad row, the cohort with its
export, closing a test intake, and the administrator's pages; each role sees only
what its permissions allow; every page is checked with axe."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from opr_shared.devstack.stack import Stack, with_direct_connection
from opr_shared.smtpsink import text_body, wait_for_mail
from opr_shared.testing.browser import accessibility_violations, screenshot
from opr_shared.testing.journey import (
    DEMO_STAFF,
    DEMO_STAFF_PASSWORD,
    bearer,
    eventually_get,
    form_answers,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
    upload_when_admitted,
)
from opr_shared.testing.samples import blank_pdf, face_photo
from PIL import Image
from playwright.async_api import Page, expect
from pymongo import AsyncMongoClient

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

FORM = form_answers()
PASSWORD = "Correct-Horse-Battery-9"
SECTIONS = {
    "registry_officer": [
        "Roster and invitations",
        "Document queue",
        "Cohort",
        "Intakes",
        "Notifications",
    ],
    "card_office": ["Photo queue", "Card collection", "Notifications"],
}
ALL_SECTIONS = [
    "Roster and invitations",
    "Document queue",
    "Photo queue",
    "Cohort",
    "Intakes",
    "Card collection",
    "Notifications",
    "Dead letters",
]


# --- real files ----------------------------------------------------------------------


def scanned_pdf() -> bytes:
    """A page with dark text bars, saved as a PDF the way a phone scanner would."""
    page = Image.new("RGB", (620, 877), (235, 235, 235))
    for top in range(60, 800, 24):
        page.paste((30, 30, 30), (40, top, 40 + (top * 7) % 500 + 60, top + 8))
    out = io.BytesIO()
    page.save(out, "PDF", resolution=72)
    return out.getvalue()


# --- helpers -------------------------------------------------------------------------


async def sign_in(page: Page, system: Stack, role: str) -> None:
    await page.goto(f"{system.gateway_url}/login")
    form = page.locator("form", has=page.get_by_role("heading", name="University account or staff"))
    await form.get_by_label("Email address").fill(DEMO_STAFF[role])
    await form.get_by_label("Password", exact=True).fill(DEMO_STAFF_PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/staff$"))


async def open_section(page: Page, name: str) -> None:
    nav = page.get_by_role("navigation", name="Staff console sections")
    await nav.get_by_role("link", name=name, exact=True).click()
    await expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    link = nav.get_by_role("link", name=name, exact=True)
    assert await link.get_attribute("aria-current") == "page"


async def nav_sections(page: Page) -> list[str]:
    nav = page.get_by_role("navigation", name="Staff console sections")
    await expect(nav.get_by_role("link", name="Overview")).to_be_visible()
    return [s.strip() for s in await nav.get_by_role("link").all_inner_texts()][1:]


def addressed_to(address: str, mail: EmailMessage) -> bool:
    return str(mail["To"]) == address


async def accessible(page: Page, name: str) -> None:
    await screenshot(page, name)
    assert await accessibility_violations(page) == [], name


async def until(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any, timeout: float = 45
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await client.get(url, headers=headers)
        if answer.status_code == 200 and done(answer.json()):
            return answer.json()
        if loop.time() > deadline:
            raise AssertionError(f"{url}: {answer.status_code} {answer.text}")
        await asyncio.sleep(0.3)


async def mark_unconfirmed(system: Stack, notification_id: str) -> None:
    """Put a sent notification on record as sent without the server's answer."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_direct_connection(system.endpoints.mongodb_uri)
    )
    try:
        marked = await mongo["notifier"]["notifications"].update_one(
            {"_id": notification_id, "status": "sent"}, {"$set": {"confirmed": False}}
        )
        assert marked.modified_count == 1
    finally:
        await mongo.close()


async def prepared_student(client: httpx.AsyncClient, system: Stack) -> dict[str, Any]:
    """A student, under 18, who activated the account, submitted the form and
    uploaded an HKID card, a passport, a parent consent form and a card photo."""
    row = roster_row(new_student_no(), date_of_birth="05/11/2010")
    registry = bearer(await staff_token(client, "registry_officer"))
    imported = await client.post(
        "/api/identity/admissions/import?invite=true", json=[row], headers=registry
    )
    assert imported.status_code == 200, imported.text
    assert system.maildir is not None
    mail = await wait_for_mail(system.maildir, lambda m: str(m["To"]) == row["personal_email"])
    link = re.search(r"/activate\?token=([\w-]+)", text_body(mail))
    assert link is not None
    activated = await client.post(
        "/api/identity/accounts/activate", json={"token": link.group(1), "password": PASSWORD}
    )
    assert activated.status_code == 200, activated.text

    student = bearer(await jupas_token(client, row))
    client.headers.update(student)
    mine = await eventually_get(client, "/api/registration/me")
    assert mine.status_code == 200, mine.text
    submitted = await client.post("/api/registration/me/submit", json=FORM)
    assert submitted.status_code == 200, submitted.text
    del client.headers["Authorization"]

    files = {
        "hk_permanent_id_card": ("hkid.pdf", scanned_pdf()),
        "passport": ("passport.pdf", blank_pdf(2)),
        "parent_consent_form": ("consent.pdf", blank_pdf(1)),
    }
    for doc_type, (name, data) in files.items():
        answer = await upload_when_admitted(
            client,
            student,
            url="/api/documents/me/documents",
            data={"doc_type": doc_type},
            files={"file": (name, data, "application/pdf")},
        )
        assert answer.status_code == 201, answer.text
    photo = await client.post(
        "/api/documents/me/photo",
        files={"file": ("me.jpg", face_photo(), "image/jpeg")},
        headers=student,
    )
    assert photo.status_code == 201, photo.text
    return row


# --- the tests -----------------------------------------------------------------------


async def test_documents_verified_and_rejected_the_photo_approved_and_the_card_collected(
    system: Stack, page: Page
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        row = await prepared_student(client, system)
    number = row["student_no"]

    # The registry officer: the documents, each shown beside the actions.
    await sign_in(page, system, "registry_officer")
    assert await nav_sections(page) == SECTIONS["registry_officer"]
    await accessible(page, "01-registry-overview")
    await open_section(page, "Document queue")
    await page.get_by_label("Student no.").fill(number)
    await page.get_by_role("button", name="Show").click()
    items = page.locator("tr[data-item]")
    await expect(items).to_have_count(3)
    await accessible(page, "02-document-queue")

    await page.get_by_role(
        "button", name=f"Review Hong Kong Permanent Identity Card of student {number}, version 1"
    ).click()
    review = page.locator("section.review-item")
    viewer = review.locator("iframe.viewer")
    await expect(viewer).to_have_attribute("src", re.compile(r"^blob:"))
    await expect(review.get_by_role("button", name="Verify")).to_be_visible()
    await expect(review.get_by_role("heading", level=2)).to_be_focused()
    # The iframe shows the very bytes the student uploaded, fetched with the staff token.
    shown = await page.evaluate(
        "async (src) => new Uint8Array(await (await fetch(src)).arrayBuffer()).length",
        await viewer.get_attribute("src"),
    )
    assert shown == len(scanned_pdf())
    await accessible(page, "03-document-open-beside-actions")
    await review.get_by_role("button", name="Verify").click()
    message = page.get_by_role("status").filter(has_text="Verified: Hong Kong")
    await expect(message).to_be_visible()
    await expect(message).to_be_focused()  # keyboard focus stays on what just happened
    await expect(items).to_have_count(2)

    await page.get_by_role("button", name=f"Review Passport of student {number}").click()
    await review.get_by_role("button", name="Verify").click()
    await expect(review.get_by_text("Enter the expiry date shown on the document.")).to_be_visible()
    assert await review.get_by_label("Expiry date on the document").get_attribute(
        "aria-invalid"
    ) == ("true")
    await review.get_by_label("Expiry date on the document").fill("2035-01-31")
    await review.get_by_role("button", name="Verify").click()
    await expect(items).to_have_count(1)

    await page.get_by_role(
        "button", name=f"Review Parent/guardian consent form of student {number}"
    ).click()
    await review.get_by_role("button", name="Reject").click()
    await expect(review.get_by_text("Give the reason")).to_be_visible()
    reason = "The form is blank: upload the consent form signed by a parent."
    await review.get_by_label("Reason for rejecting").fill(reason)
    await screenshot(page, "04-rejecting-with-a-reason")
    await review.get_by_role("button", name="Reject").click()
    await expect(page.get_by_text("Nothing to show with these filters.")).to_be_visible()
    await page.get_by_label("Status").select_option("rejected")
    await page.get_by_role("button", name="Show").click()
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_attribute("data-doc-type", "parent_consent_form")

    # The registry may not review photos nor reach the administrator's pages.
    await page.goto(f"{system.gateway_url}/staff/dead-letters")
    await expect(page.get_by_role("alert")).to_contain_text("does not give access")
    await page.get_by_role("button", name="Sign out").click()

    # The card office: the photo with the automatic check results beside approve.
    await sign_in(page, system, "card_office")
    assert await nav_sections(page) == SECTIONS["card_office"]
    await open_section(page, "Photo queue")
    await page.get_by_label("Student no.").fill(number)
    await page.get_by_role("button", name="Show").click()
    await page.get_by_role("button", name=f"Review Card photo of student {number}").click()
    photo = review.get_by_role("img", name=f"Card photo of student {number}, version 1")
    await expect(photo).to_be_visible()
    assert await photo.evaluate("img => img.naturalWidth") == 480
    checks = review.get_by_test_id("photo-checks")
    await expect(checks).to_contain_text("Faces found")
    await expect(checks).to_contain_text("480 \u00d7 600")
    await accessible(page, "05-photo-with-checks")
    # The other way to the file: the documents service's expiring staff link, in a tab.
    async with page.context.expect_page() as opening:
        await review.get_by_role("button", name="Open the file in a new tab").click()
    tab = await opening.value
    await tab.wait_for_load_state()
    assert re.search(r"/api/documents/photos/[0-9a-f-]{36}/content\?link=", tab.url), tab.url
    assert await tab.evaluate("document.images[0].naturalWidth") == 480
    await tab.close()
    await review.get_by_role("button", name="Approve photo").click()
    await expect(page.get_by_role("status").filter(has_text="approved")).to_be_visible()

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        record = await until(
            client,
            f"/api/registration/registrations/{number}",
            registry,
            lambda r: {i["item"]: i["state"] for i in r["checklist"]}.get("photo") == "verified",
        )
        states = {i["item"]: (i["state"], i["reason"]) for i in record["checklist"]}
        assert states["hk_permanent_id_card"] == ("verified", None)
        assert states["parent_consent_form"] == ("rejected", reason)
        assert record["status"] == "completed"

        office = bearer(await staff_token(client, "card_office"))
        holder = await until(
            client, f"/api/card/holders/{number}", office, lambda h: h["card_no"] is not None
        )

    # The card office adds a collection slot and hands the card over.
    await open_section(page, "Card collection")
    day = date.today() + timedelta(days=60 + uuid.uuid4().int % 300)
    venue = page.get_by_label("Venue")
    if not await venue.input_value():  # no schedule published yet on this stack
        await venue.fill("Student Card Office, Room 1101, Academic Building")
    await page.get_by_label("Date", exact=True).fill(day.isoformat())
    await page.get_by_label("Starts (Hong Kong time)").fill("14:00")
    await page.get_by_label("Ends", exact=True).fill("15:00")
    await page.get_by_label("Capacity").fill("25")
    await page.get_by_role("button", name="Add slot").click()
    await expect(page.get_by_text(f"Slot added: {day.isoformat()} 14:00.")).to_be_visible()
    slot = page.locator(f"tr[data-slot='{day.isoformat()}-1400']")
    await expect(slot).to_contain_text("25")
    await page.get_by_label("Student no.").fill(number)
    await page.get_by_role("button", name="Find the card").click()
    await expect(page.locator("[data-card-status]")).to_have_text("Issued, not yet collected")
    await accessible(page, "06-card-collection")
    await page.get_by_role("button", name=f"Mark card {holder['card_no']} collected").click()
    await expect(page.get_by_text(f"Card {holder['card_no']} is marked collected.")).to_be_visible()
    await expect(page.locator("[data-card-status]")).to_have_text("Collected")
    await screenshot(page, "07-card-collected")

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        office = bearer(await staff_token(client, "card_office"))
        after = (await client.get(f"/api/card/holders/{number}", headers=office)).json()
        assert after["status"] == "collected"
        assert after["cards"][-1]["collected_at"] is not None
        schedule = (await client.get("/api/card/schedule", headers=office)).json()
        assert {"slot_id": f"{day.isoformat()}-1400", "capacity": 25} in [
            {"slot_id": s["slot_id"], "capacity": s["capacity"]} for s in schedule["slots"]
        ]


async def test_a_roster_with_a_bad_row_imports_the_good_rows_and_reports_the_bad_one(
    system: Stack, page: Page, tmp_path: Path
) -> None:
    good = [roster_row(new_student_no()), roster_row(new_student_no())]
    bad = roster_row(new_student_no(), personal_email="not-an-email")
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(good[0]))
        writer.writeheader()
        writer.writerows([good[0], bad, good[1]])

    await sign_in(page, system, "registry_officer")
    await open_section(page, "Roster and invitations")
    await accessible(page, "01-roster")
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.get_by_text("Choose a CSV or JSON file.")).to_be_visible()
    await page.get_by_label("Roster file").set_input_files(roster)
    await page.get_by_role("button", name="Import", exact=True).click()

    await expect(page.get_by_text("Import finished: 3 rows processed.")).to_be_visible()
    progress = page.get_by_label("Import progress")
    assert await progress.evaluate("p => [p.value, p.max]") == [3, 3]
    report = page.get_by_test_id("import-report")
    await expect(report.locator("[data-figure=created]")).to_have_text("2")
    await expect(report.locator("[data-figure=rejected]")).to_have_text("1")
    errors = report.get_by_role("table", name="Rows not imported (1)")
    error_row = errors.locator("tbody tr")
    await expect(error_row).to_have_count(1)
    await expect(error_row).to_have_attribute("data-row", "2")
    await expect(error_row.locator("td").nth(1)).to_have_text("personal_email")
    await expect(error_row.locator("td").nth(2)).to_contain_text("not an e-mail address")
    await accessible(page, "02-import-report")

    # Invitations sent again to the two imported students.
    numbers = ", ".join(r["student_no"] for r in good)
    await page.get_by_label("Invite these students again").fill(f"{numbers}, 12")
    await page.get_by_role("button", name="Send again").click()
    await expect(page.get_by_text("Not student numbers (8 digits): 12")).to_be_visible()
    await page.get_by_label("Invite these students again").fill(numbers)
    await page.get_by_role("button", name="Send again").click()
    await expect(page.get_by_text("Invitations sent: 2.")).to_be_visible()

    await page.get_by_role("button", name="中文").click()
    await expect(page.get_by_role("heading", level=1, name="學生名單及邀請")).to_be_visible()
    await expect(page.get_by_role("table", name="未能匯入的資料列\uff081\uff09")).to_be_visible()
    # Messages already shown follow the language too.
    await expect(page.get_by_text("已發出邀請\uff1a2 封\u3002")).to_be_visible()
    await accessible(page, "03-import-report-zh-hant")
    await page.get_by_role("button", name="English").click()

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        for row in good:
            assert await jupas_token(client, row)
        refused = await client.post(
            "/api/identity/sessions/jupas",
            json={
                "jupas_app_no": bad["jupas_app_no"],
                "last_name": bad["surname"],
                "first_name": bad["given_names"],
                "date_of_birth": bad["date_of_birth"],
            },
        )
        assert refused.status_code in (401, 403)
    assert system.maildir is not None
    for address in [r["personal_email"] for r in good]:
        mail = await wait_for_mail(system.maildir, partial(addressed_to, address))
        assert "/activate?token=" in text_body(mail)


async def free_test_intake(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """A far-future intake no other test uses, not yet closed."""
    intakes = (await client.get("/api/registration/intakes", headers=headers)).json()
    closed = {i["intake_year"] for i in intakes if i["closed_at"]}
    free = [y for y in range(2090, 2101) if y not in closed]
    assert free, "every test intake year is closed on this stack"
    return free[uuid.uuid4().int % len(free)]


async def test_cohort_filtered_and_exported_a_test_intake_closed_and_the_admin_pages(
    system: Stack, page: Page
) -> None:
    surname = "Tse" + uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        year = await free_test_intake(client, registry)
        calendar = {
            "registration_deadline": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "term_start": f"{year}-09-01",
        }
        put = await client.put(f"/api/registration/intakes/{year}", json=calendar, headers=registry)
        assert put.status_code == 200, put.text
        law = roster_row(new_student_no(), surname=surname, intake_year=year, programme_code="LLB")
        # One more than a page of ten, all but one in BBA.
        business = [
            roster_row(new_student_no(), surname=surname, intake_year=year) for _ in range(10)
        ]
        imported = await client.post(
            "/api/identity/admissions/import", json=[law, *business], headers=registry
        )
        assert imported.json()["created"] == 11, imported.text
        cohort = await until(
            client,
            f"/api/registration/registrations?intake_year={year}&q={surname}",
            registry,
            lambda found: found["total"] == 11,
        )
        assert {r["status"] for r in cohort["items"]} == {"in_progress"}

    await sign_in(page, system, "admin")
    assert await nav_sections(page) == ALL_SECTIONS
    await open_section(page, "Cohort")
    await page.get_by_label("Intake year").fill(str(year))
    await page.get_by_label("Search", exact=True).fill(surname)
    await page.get_by_role("button", name="Show").click()
    rows = page.locator("tr[data-student]")
    await expect(rows).to_have_count(11)
    await page.get_by_label("Rows per page").select_option("10")
    await expect(rows).to_have_count(10)
    await expect(page.get_by_text("Registrations 1\u201310 of 11")).to_be_visible()
    assert await page.get_by_role("button", name="Previous page").is_disabled()
    first_page = await rows.evaluate_all("rows => rows.map(r => r.dataset.student)")
    await page.get_by_role("button", name="Next page").click()
    await expect(page.get_by_text("Registrations 11\u201311 of 11")).to_be_visible()
    await expect(rows).to_have_count(1)
    last = await rows.first.get_attribute("data-student")
    assert sorted([*first_page, last]) == sorted(r["student_no"] for r in [law, *business])
    assert await page.get_by_role("button", name="Next page").is_disabled()
    await page.get_by_label("Programme").fill("llb")
    await page.get_by_role("button", name="Show").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-student", law["student_no"])
    await accessible(page, "01-cohort-filtered")

    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Export as CSV").click()
    download = await waiting.value
    assert re.fullmatch(r"registrations-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    exported = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["student_no"], r["programme_code"]) for r in records] == [(law["student_no"], "LLB")]
    await expect(page.get_by_role("status")).to_contain_text("Downloaded registrations-")

    # On a phone: one column, the table's cells labelled.
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(rows.first.locator("td").first).to_be_visible()
    await accessible(page, "02-cohort-on-a-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})

    await open_section(page, "Intakes")
    await page.get_by_role("button", name=f"Close intake {year}").click()
    dialog = page.get_by_role("alertdialog", name=f"Close intake {year}?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("heading")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await page.get_by_role("button", name=f"Close intake {year}").click()
    await accessible(page, "03-close-intake-confirmation")
    await dialog.get_by_role("button", name=f"Yes, close intake {year}").click()
    await expect(page.get_by_role("status")).to_contain_text(
        f"Intake {year} closed: 11 registrations updated (Withdrawn: 11)."
    )
    await expect(page.locator(f"tr[data-intake='{year}']")).not_to_contain_text("Open")
    await screenshot(page, "04-intake-closed")

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        closed = await client.get(
            "/api/registration/registrations",
            params={"intake_year": year, "q": surname},
            headers=registry,
        )
        assert closed.json()["total"] == 11
        assert {r["status"] for r in closed.json()["items"]} == {"withdrawn"}

        # The withdrawal notice to the law student went out; as if the notifier had
        # died between the point of no return and the server's answer, it is on
        # record as sent but unconfirmed (a state only a crash produces).
        notices = f"/api/notifier/notifications?student_no={law['student_no']}&status=sent"
        [notice] = await until(client, notices, registry, lambda found: len(found) == 1)
        assert notice["template"] == "registration_withdrawn"
        await mark_unconfirmed(system, notice["id"])

    await open_section(page, "Notifications")
    await expect(page.get_by_role("table", name=re.compile(r"\d+ notifications"))).to_be_visible()
    await accessible(page, "05-failed-notifications")
    await page.get_by_label("Status").select_option(label="Sent, not confirmed by the mail server")
    await page.get_by_label("Student no.").fill(law["student_no"])
    await page.get_by_role("button", name="Show").click()
    unconfirmed = page.locator("tr[data-notification]")
    await expect(unconfirmed).to_have_count(1)
    await expect(unconfirmed.first).to_have_attribute("data-notification", notice["id"])
    await page.get_by_role("button", name=f"Resend to student {law['student_no']}").click()
    await expect(page.get_by_role("status")).to_contain_text(
        f"The email to student {law['student_no']} is queued again."
    )
    await expect(unconfirmed).to_have_count(0)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        detail = f"/api/notifier/notifications/{notice['id']}"
        resent = await until(
            client, detail, registry, lambda found: found["log"][-1]["event"] == "sent"
        )
        assert resent["confirmed"] is True
        assert [e["event"] for e in resent["log"]][-2:] == ["resend", "sent"]

    await open_section(page, "Dead letters")
    for service in ("identity", "registration", "documents", "notifier", "card"):
        section = page.locator(f"section[data-service={service}]")
        await expect(section.get_by_role("heading", name=f"Service: {service}")).to_be_visible()
        await expect(
            section.get_by_text("No dead letters.").or_(section.get_by_role("table"))
        ).to_be_visible()
        await expect(section.get_by_role("alert")).to_have_count(0)
    await accessible(page, "06-dead-letters")

    await page.get_by_role("link", name="Overview").click()
    await expect(page.get_by_role("heading", name="What you can do")).to_be_visible()
    await accessible(page, "07-admin-overview")
