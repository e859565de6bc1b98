"""Settings of the registration service."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from opr_shared.settings import ServiceSettings
from pydantic import AwareDatetime, Field

_HKT = timezone(timedelta(hours=8))


class Settings(ServiceSettings):
    service_name: str = "registration"

    # The demo intake scheduled at start-up, in development and test only, when
    # no intake exists yet (DEMO_INTAKE_* in the environment change it).
    demo_intake_enabled: bool = Field(
        default=True, description="Schedule the demo intake when none exists (never in production)."
    )
    demo_intake_year: int = 2027
    demo_intake_registration_deadline: AwareDatetime = datetime(2027, 8, 13, 17, 0, tzinfo=_HKT)
    demo_intake_term_start: date = date(2027, 9, 1)
    demo_intake_age_cutoff: date = date(2027, 9, 1)
