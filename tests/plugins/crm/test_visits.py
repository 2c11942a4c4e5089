"""Site visits through the whole application: slots, booking (capacity under concurrency),
reschedule keeping the id, cancel, the advisor's list, feedback, the reminder and no-show jobs
with a controlled clock, and the console's visits section and upcoming page.

The clock stands at Monday 2 June 2025, 10:00 IST (``MONDAY_10``); slots are 60 minutes from
10:00 to 19:00 IST, Monday to Saturday, 3 places each, booked at least 2 h and at most 30
days ahead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest

from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi_plugins.crm.visits import service
from tests.plugins.crm.conftest import LEADS, add_agent, enquiry, outbox, send

IST = zoneinfo.ZoneInfo("Asia/Kolkata")
API = "/api/v1/crm"
VISITS = f"{API}/visits"
PHONES = [f"98765 4{n:04d}" for n in range(25)]


def ist(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """``day`` June 2025 at that IST time."""
    return dt.datetime(2025, 6, day, hour, minute, tzinfo=IST)


def iso(at: dt.datetime) -> str:
    return at.isoformat()


def same(text: str, at: dt.datetime) -> bool:
    return dt.datetime.fromisoformat(text) == at


@pytest.fixture
async def advisor(make_user: Any) -> Any:
    return await make_user("agent")


@pytest.fixture
async def lead(client: Any, ctx: Any, clock: Any, buyer: Any, project: Any, advisor: Any
               ) -> str:
    """A lead of the buyer's, assigned to ``advisor`` and contacted."""
    await add_agent(ctx, user_id=advisor.id, name="Neha Advisor")
    lead_id = (await send(client, buyer, enquiry(project)))["lead_id"]
    response = await client.post(f"{LEADS}/{lead_id}/stage", json={"stage": "contacted"},
                                 headers=advisor.headers)
    assert response.status == 200
    return str(lead_id)


async def call(client: Any, method: str, url: str, user: Any | None, status: int,
               **kwargs: Any) -> Any:
    headers = user.headers if user is not None else {}
    response = await client.request(method, url, headers=headers, **kwargs)
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def book(client: Any, user: Any, lead_id: str, at: dt.datetime, status: int = 201
               ) -> Any:
    return await call(client, "POST", f"{LEADS}/{lead_id}/visits", user, status,
                      json={"starts_at": iso(at)})


async def lead_stage(ctx: Any, lead_id: str) -> str:
    return str(await ctx.db.fetchval("SELECT stage FROM crm_leads WHERE id = %s",
                                     (uuid.UUID(lead_id),)))


def slots_url(project: Any) -> str:
    return f"{API}/projects/{project['id']}/visit-slots"


# --------------------------------------------------------------------------------------------
# Slots
# --------------------------------------------------------------------------------------------


async def test_free_slots_follow_the_calendar_and_the_bookings(client, ctx, clock, buyer,
                                                                staff, project, lead):
    got = await call(client, "GET", slots_url(project), buyer, 200)
    starts = [dt.datetime.fromisoformat(s["starts_at"]) for s in got]
    assert starts[0] == ist(2, 12)  # 2 h notice from Monday 10:00
    assert all(s["remaining"] == 3 for s in got)
    assert all(s.astimezone(IST).weekday() != 6 for s in starts)  # no Sunday
    assert starts[-1] < clock.at + dt.timedelta(days=30)
    assert len(got) == 7 + 25 * 9  # Monday from 12:00, then 25 business days of 9 slots
    await book(client, buyer, lead, ist(3, 15))
    window = {"from": iso(ist(3, 10)), "to": iso(ist(4, 10))}
    got = await call(client, "GET", slots_url(project), buyer, 200, params=window)
    assert [s["remaining"] for s in got] == [3] * 5 + [2] + [3] * 3
    assert same(got[5]["starts_at"], ist(3, 15)) and len(got) == 9


async def test_the_slot_query_is_checked(client, ctx, clock, buyer, project):
    url = slots_url(project)
    answer = await call(client, "GET", url, buyer, 422, params={"from": "tomorrow"})
    assert [e["field"] for e in answer["errors"]] == ["from"]
    answer = await call(client, "GET", url, buyer, 422, params={
        "from": iso(ist(3, 10)), "to": iso(ist(3, 10))})
    assert [e["field"] for e in answer["errors"]] == ["to"]
    answer = await call(client, "GET", url, buyer, 422, params={
        "from": iso(ist(3, 10)), "to": iso(ist(3, 10) + dt.timedelta(days=31))})
    assert [e["field"] for e in answer["errors"]] == ["to"]
    await call(client, "GET", f"{API}/projects/{uuid.uuid4()}/visit-slots", buyer, 404)
    await call(client, "GET", url, None, 401)


# --------------------------------------------------------------------------------------------
# Booking
# --------------------------------------------------------------------------------------------


async def test_the_buyer_books_and_the_lead_waits_for_the_visit(client, ctx, clock, buyer,
                                                                 advisor, staff, make_user,
                                                                 lead, project):
    visit = await book(client, buyer, lead, ist(3, 15))
    assert (visit["status"], visit["lead_id"]) == ("scheduled", lead)
    assert same(visit["starts_at"], ist(3, 15)) and same(visit["ends_at"], ist(3, 16))
    assert await lead_stage(ctx, lead) == "visit_scheduled"
    (scheduled,) = await outbox(ctx, "crm.visit_scheduled")
    assert scheduled["visit_id"] == visit["id"] and scheduled["_actor"] == f"user:{buyer.id}"
    assert (scheduled["buyer_user_id"], scheduled["advisor_user_id"]) == (
        str(buyer.id), str(advisor.id))
    assert "phone" not in str(scheduled) and "98765" not in str(scheduled)
    changed = await outbox(ctx, "crm.stage_changed")
    assert (changed[-1]["from_stage"], changed[-1]["to_stage"]) == ("contacted",
                                                                    "visit_scheduled")
    lead_page = await call(client, "GET", f"{LEADS}/{lead}", advisor, 200)
    assert lead_page["lead"]["sla"]["paused"] is True
    for user in (buyer, advisor, staff):
        detail = await call(client, "GET", f"{VISITS}/{visit['id']}", user, 200)
        assert [h["kind"] for h in detail["history"]] == ["scheduled"]
    stranger = await make_user("agent")
    await call(client, "GET", f"{VISITS}/{visit['id']}", stranger, 404)
    await call(client, "GET", f"{VISITS}/{uuid.uuid4()}", staff, 404)
    await call(client, "GET", f"{VISITS}/{visit['id']}", None, 401)
    await call(client, "GET", f"{VISITS}/nope", staff, 422)
    await book(client, stranger, lead, ist(4, 15), status=404)
    answer = await book(client, advisor, lead, ist(4, 15), status=409)
    assert "already" in answer["detail"]


async def test_bad_times_are_refused_naming_starts_at(client, ctx, clock, advisor, staff,
                                                      lead):
    for at in (ist(3, 15, 30),             # not a slot start
               ist(2, 11),                 # within the 2 h notice
               ist(8, 12),                 # a Sunday
               ist(3, 19),                 # the closing time
               ist(2, 12) + dt.timedelta(days=35)):  # beyond the horizon
        answer = await book(client, advisor, lead, at, status=422)
        assert [e["field"] for e in answer["errors"]] == ["starts_at"], at
    answer = await call(client, "POST", f"{LEADS}/{lead}/visits", advisor, 422, json={})
    assert [e["field"] for e in answer["errors"]] == ["starts_at"]
    await call(client, "POST", f"{LEADS}/{lead}/visits", None, 401,
               json={"starts_at": iso(ist(3, 15))})
    await book(client, staff, str(uuid.uuid4()), ist(3, 15), status=404)
    await call(client, "POST", f"{LEADS}/{lead}/stage", advisor, 200,
               json={"stage": "lost", "reason": "Bought elsewhere"})
    answer = await book(client, advisor, lead, ist(3, 15), status=409)
    assert "closed" in answer["detail"]


async def test_twenty_concurrent_bookings_of_a_slot_of_three(client, ctx, clock, buyer, staff,
                                                             project):
    leads = [(await send(client, buyer, enquiry(project, phone=p)))["lead_id"]
             for p in PHONES[:20]]
    responses = await asyncio.gather(*[
        client.post(f"{LEADS}/{lead_id}/visits", json={"starts_at": iso(ist(4, 11))},
                    headers=staff.headers) for lead_id in leads])
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 3 + [409] * 17
    refused = [await r.json() for r in responses if r.status == 409]
    assert {a["type"].rsplit("/", 1)[-1] for a in refused} == {"slot-full"}
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_visits") == 3
    assert len(await outbox(ctx, "crm.visit_scheduled")) == 3
    got = await call(client, "GET", slots_url(project), buyer, 200, params={
        "from": iso(ist(4, 10)), "to": iso(ist(4, 13))})
    assert [s["remaining"] for s in got] == [3, 3]  # 10:00 and 12:00; 11:00 is full


# --------------------------------------------------------------------------------------------
# Reschedule, cancel
# --------------------------------------------------------------------------------------------


async def test_a_reschedule_keeps_the_id_and_records_the_old_time(client, ctx, clock, buyer,
                                                                  advisor, staff, lead):
    visit = await book(client, buyer, lead, ist(3, 15))
    url = f"{VISITS}/{visit['id']}"
    moved = await call(client, "POST", f"{url}/reschedule", advisor, 200,
                       json={"starts_at": iso(ist(5, 11))})
    assert moved["id"] == visit["id"] and moved["reschedules"] == 1
    assert same(moved["starts_at"], ist(5, 11))
    answer = await call(client, "POST", f"{url}/reschedule", advisor, 422,
                        json={"starts_at": iso(ist(5, 11))})
    assert [e["field"] for e in answer["errors"]] == ["starts_at"]
    detail = await call(client, "GET", url, buyer, 200)
    assert [h["kind"] for h in detail["history"]] == ["scheduled", "rescheduled"]
    assert same(detail["history"][1]["from_starts_at"], ist(3, 15))
    (event,) = await outbox(ctx, "crm.visit_rescheduled")
    assert event["visit_id"] == visit["id"] and same(event["from_starts_at"], ist(3, 15))
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_visits") == 1

    answer = await call(client, "POST", f"{url}/cancel", buyer, 422, json={"reason": " "})
    assert [e["field"] for e in answer["errors"]] == ["reason"]
    cancelled = await call(client, "POST", f"{url}/cancel", buyer, 200,
                           json={"reason": "Travelling that week"})
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled",
                                                                  "Travelling that week")
    (event,) = await outbox(ctx, "crm.visit_cancelled")
    assert "reason" not in event and "Travelling" not in str(event)
    assert await lead_stage(ctx, lead) == "contacted"  # back where it was
    await call(client, "POST", f"{url}/cancel", staff, 409, json={"reason": "again"})
    await call(client, "POST", f"{url}/reschedule", staff, 409,
               json={"starts_at": iso(ist(6, 11))})
    await call(client, "POST", f"{VISITS}/{uuid.uuid4()}/cancel", staff, 404,
               json={"reason": "x"})
    again = await book(client, buyer, lead, ist(6, 11))  # a new visit after a cancelled one
    assert again["id"] != visit["id"]


async def test_a_reschedule_into_a_full_slot_is_refused(client, ctx, clock, buyer, staff,
                                                        project, lead):
    others = [(await send(client, buyer, enquiry(project, phone=p)))["lead_id"]
              for p in PHONES[:3]]
    for other in others:
        await book(client, staff, other, ist(4, 11))
    visit = await book(client, buyer, lead, ist(3, 15))
    answer = await call(client, "POST", f"{VISITS}/{visit['id']}/reschedule", buyer, 409,
                        json={"starts_at": iso(ist(4, 11))})
    assert answer["type"].endswith("/slot-full")


# --------------------------------------------------------------------------------------------
# The advisor's list and feedback
# --------------------------------------------------------------------------------------------


async def test_the_advisor_lists_their_visits_soonest_first(client, ctx, clock, buyer, advisor,
                                                            project, lead):
    other = (await send(client, buyer, enquiry(project, phone=PHONES[1])))["lead_id"]
    late = await book(client, buyer, lead, ist(6, 15))
    soon = await book(client, advisor, other, ist(3, 12))
    page = await call(client, "GET", f"{API}/my/visits", advisor, 200, params={"limit": "1"})
    assert [v["id"] for v in page["items"]] == [soon["id"]] and page["next_cursor"]
    page = await call(client, "GET", f"{API}/my/visits", advisor, 200,
                      params={"limit": "1", "cursor": page["next_cursor"]})
    assert [v["id"] for v in page["items"]] == [late["id"]] and page["next_cursor"] is None
    page = await call(client, "GET", f"{API}/my/visits", advisor, 200,
                      params={"status": "completed"})
    assert page["items"] == []
    await call(client, "GET", f"{API}/my/visits", advisor, 422, params={"status": "nope"})
    await call(client, "GET", f"{API}/my/visits", advisor, 422, params={"cursor": "nope"})
    await call(client, "GET", f"{API}/my/visits", buyer, 403)
    await call(client, "GET", f"{API}/my/visits", None, 401)


async def test_feedback_completes_the_visit_and_the_lead_is_visited(client, ctx, clock, buyer,
                                                                    advisor, lead):
    visit = await book(client, buyer, lead, ist(3, 15))
    url = f"{VISITS}/{visit['id']}/feedback"
    body = {"attended": True, "rating": 4, "notes": "Liked the east-facing 2 BHK"}
    answer = await call(client, "POST", url, advisor, 409, json=body)
    assert "not started" in answer["detail"]
    clock.at = ist(3, 15, 40)
    await call(client, "POST", url, buyer, 403, json=body)
    answer = await call(client, "POST", url, advisor, 422, json={"attended": True, "rating": 6})
    assert [e["field"] for e in answer["errors"]] == ["rating"]
    answer = await call(client, "POST", url, advisor, 422, json={"attended": False,
                                                                  "rating": 3})
    assert [e["field"] for e in answer["errors"]] == ["rating"]
    done = await call(client, "POST", url, advisor, 200, json=body)
    assert (done["status"], done["attended"], done["rating"]) == ("completed", True, 4)
    assert await lead_stage(ctx, lead) == "visited"
    (event,) = await outbox(ctx, "crm.visit_completed")
    assert (event["visit_id"], event["rating"]) == (visit["id"], 4)
    assert "notes" not in event and "east-facing" not in str(event)
    await call(client, "POST", url, advisor, 409, json=body)


async def test_the_buyer_lists_their_visits_without_the_advisors_feedback(
        client, ctx, clock, buyer, advisor, project, lead, make_user):
    other = (await send(client, buyer, enquiry(project, phone=PHONES[1])))["lead_id"]
    late = await book(client, advisor, lead, ist(6, 15))  # booked for them by the advisor
    soon = await book(client, buyer, other, ist(3, 12))
    url = f"{API}/my/booked-visits"
    page = await call(client, "GET", url, buyer, 200, params={"limit": "1"})
    assert [v["id"] for v in page["items"]] == [soon["id"]] and page["next_cursor"]
    page = await call(client, "GET", url, buyer, 200,
                      params={"limit": "1", "cursor": page["next_cursor"]})
    assert [v["id"] for v in page["items"]] == [late["id"]] and page["next_cursor"] is None
    stranger = await make_user()
    assert (await call(client, "GET", url, stranger, 200))["items"] == []
    await call(client, "GET", url, buyer, 422, params={"cursor": "nope"})
    await call(client, "GET", url, None, 401)
    # The advisor's rating and notes are theirs and staff's: the buyer sees the outcome only.
    clock.at = ist(3, 12, 40)
    await call(client, "POST", f"{VISITS}/{soon['id']}/feedback", advisor, 200,
               json={"attended": True, "rating": 2, "notes": "Budget is far below"})
    page = await call(client, "GET", url, buyer, 200, params={"status": "completed"})
    (seen,) = page["items"]
    assert (seen["attended"], seen["rating"], seen["notes"]) == (True, None, None)
    detail = await call(client, "GET", f"{VISITS}/{soon['id']}", buyer, 200)
    assert (detail["visit"]["rating"], detail["visit"]["notes"]) == (None, None)
    detail = await call(client, "GET", f"{VISITS}/{soon['id']}", advisor, 200)
    assert (detail["visit"]["rating"], detail["visit"]["notes"]) == (2, "Budget is far below")


async def test_feedback_of_a_missed_visit_is_a_no_show(client, ctx, clock, buyer, advisor,
                                                       lead):
    visit = await book(client, buyer, lead, ist(3, 15))
    clock.at = ist(3, 16, 5)
    done = await call(client, "POST", f"{VISITS}/{visit['id']}/feedback", advisor, 200,
                      json={"attended": False})
    assert done["status"] == "no_show"
    (event,) = await outbox(ctx, "crm.visit_no_show")
    assert event["marked_by"] == "advisor"
    assert await outbox(ctx, "crm.visit_completed") == []
    assert await lead_stage(ctx, lead) == "contacted"


# --------------------------------------------------------------------------------------------
# The jobs
# --------------------------------------------------------------------------------------------


async def reminders(ctx: Any) -> list[tuple[str, str, dt.datetime]]:
    return [(r["visit_id"], r["which"], dt.datetime.fromisoformat(r["starts_at"]))
            for r in await outbox(ctx, "crm.visit_reminder_due")]


async def test_reminders_go_out_once_at_24_h_and_1_h(client, ctx, clock, buyer, advisor, lead):
    visit = await book(client, buyer, lead, ist(4, 15))  # Wednesday 15:00
    clock.at = ist(3, 14, 59)
    await service.send_reminders(ctx)
    assert await reminders(ctx) == []
    clock.at = ist(3, 15)
    await service.send_reminders(ctx)
    await asyncio.gather(*[service.send_reminders(ctx) for _ in range(4)])
    await service.send_reminders(ctx)
    assert await reminders(ctx) == [(visit["id"], "24h", ist(4, 15))]
    (event,) = await outbox(ctx, "crm.visit_reminder_due")
    assert (event["buyer_user_id"], event["advisor_user_id"], event["lead_id"]) == (
        str(buyer.id), str(advisor.id), lead)
    assert event["_actor"] == "system:crm-visits" and "98765" not in str(event)
    clock.at = ist(4, 14, 0)
    await asyncio.gather(*[service.send_reminders(ctx) for _ in range(4)])
    await service.send_reminders(ctx)
    assert [w for _, w, _ in await reminders(ctx)] == ["24h", "1h"]
    clock.at = ist(4, 14, 30)
    await service.send_reminders(ctx)
    assert len(await reminders(ctx)) == 2


async def test_a_reschedule_arms_the_reminders_again(client, ctx, clock, buyer, lead):
    visit = await book(client, buyer, lead, ist(4, 15))
    clock.at = ist(3, 15, 30)
    await service.send_reminders(ctx)
    await call(client, "POST", f"{VISITS}/{visit['id']}/reschedule", buyer, 200,
               json={"starts_at": iso(ist(5, 12))})  # Thursday 12:00
    clock.at = ist(4, 11, 59)
    await service.send_reminders(ctx)
    assert [(w, at) for _, w, at in await reminders(ctx)] == [("24h", ist(4, 15))]
    clock.at = ist(4, 12)  # 24 h before the new time
    await service.send_reminders(ctx)
    clock.at = ist(4, 14)  # the old 1 h moment: nothing for the old time
    await service.send_reminders(ctx)
    clock.at = ist(5, 11)
    await service.send_reminders(ctx)
    await service.send_reminders(ctx)
    assert [(w, at) for _, w, at in await reminders(ctx)] == [
        ("24h", ist(4, 15)), ("24h", ist(5, 12)), ("1h", ist(5, 12))]


async def test_a_visit_booked_less_than_24_h_ahead_gets_only_the_1_h_reminder(
        client, ctx, clock, buyer, lead):
    await book(client, buyer, lead, ist(2, 16))  # Monday 16:00, six hours ahead
    await service.send_reminders(ctx)
    clock.at = ist(2, 14, 59)
    await service.send_reminders(ctx)
    assert await reminders(ctx) == []
    clock.at = ist(2, 15)
    await asyncio.gather(*[service.send_reminders(ctx) for _ in range(3)])
    assert [w for _, w, _ in await reminders(ctx)] == ["1h"]


async def test_a_stale_reminder_is_never_sent_late(client, ctx, clock, buyer, lead):
    await book(client, buyer, lead, ist(4, 15))
    clock.at = ist(4, 14, 30)  # the job was down from T-24 h to now
    await service.send_reminders(ctx)
    assert [w for _, w, _ in await reminders(ctx)] == ["1h"]


async def test_a_visit_still_scheduled_after_the_grace_is_a_no_show_once(client, ctx, clock,
                                                                         buyer, lead):
    visit = await book(client, buyer, lead, ist(2, 15))
    clock.at = ist(2, 18)  # ended 16:00; grace 2 h
    await service.mark_no_shows(ctx)
    assert await outbox(ctx, "crm.visit_no_show") == []
    clock.at = ist(2, 18, 1)
    await asyncio.gather(*[service.mark_no_shows(ctx) for _ in range(4)])
    await service.mark_no_shows(ctx)
    (event,) = await outbox(ctx, "crm.visit_no_show")
    assert (event["visit_id"], event["marked_by"]) == (visit["id"], "grace")
    detail = await call(client, "GET", f"{VISITS}/{visit['id']}", buyer, 200)
    assert detail["visit"]["status"] == "no_show"
    assert [h["kind"] for h in detail["history"]][-1] == "no_show"
    assert await lead_stage(ctx, lead) == "contacted"


# --------------------------------------------------------------------------------------------
# The console
# --------------------------------------------------------------------------------------------


async def test_staff_see_and_move_visits_in_the_console(client, services, ctx, clock, buyer,
                                                        advisor, lead, project):
    visit = await book(client, buyer, lead, ist(3, 15))
    await make_staff(services)
    assert (await sign_in(client)).status == 303
    page = f"/console/crm/leads/{lead}"
    body = await (await client.get(page)).text()
    assert "Tue 03 Jun 2025, 15:00 IST" in body and "2025-06-03 09:30 UTC" in body
    assert "<script" not in body
    token = csrf_of(body)
    response = await client.post(f"/console/crm/visits/{visit['id']}/cancel",
                                 data={"csrf_token": token, "reason": ""})
    assert response.status == 422
    assert 'id="reason-error"' in await response.text()
    response = await client.post(f"/console/crm/visits/{visit['id']}/reschedule",
                                 data={"csrf_token": token, "starts_at": iso(ist(3, 15, 30))})
    assert response.status == 422
    assert 'id="starts_at-error"' in await response.text()
    response = await client.post(f"/console/crm/visits/{visit['id']}/reschedule",
                                 allow_redirects=False,
                                 data={"csrf_token": token,
                                       "starts_at": iso(ist(5, 11).astimezone(dt.UTC))})
    assert response.status == 303 and response.headers["Location"] == page
    body = await (await client.get("/console/crm/visits")).text()
    assert "Thu 05 Jun 2025, 11:00 IST" in body and "2025-06-05 05:30 UTC" in body
    assert "Asha Rao" in body and "Green Meadows" in body
    assert str(project["id"]) not in body and "<script" not in body
    response = await client.post(f"/console/crm/visits/{visit['id']}/cancel",
                                 allow_redirects=False,
                                 data={"csrf_token": token, "reason": "Buyer asked"})
    assert response.status == 303
    body = await (await client.get(page)).text()
    assert 'data-visit-status="cancelled"' in body and "Book a visit" in body
    history = await ctx.db.fetch("SELECT kind, actor FROM crm_visit_history ORDER BY id")
    assert [h["kind"] for h in history] == ["scheduled", "rescheduled", "cancelled"]
    assert history[-1]["actor"].startswith("staff:")
