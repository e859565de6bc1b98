"""The demo staff accounts identity creates in development (``SEED_DEMO_STAFF``).

One per staff role, all with the same documented password (README, "Running it
locally"); production refuses to start with them. Tests, the benchmark and the
portal's sign-in hints use the same names.
"""

from __future__ import annotations

DEMO_STAFF = {
    "registry_officer": "registry.officer@staff.university.example",
    "card_office": "card.office@staff.university.example",
    "admin": "admin@staff.university.example",
}
DEMO_STAFF_PASSWORD = "Demo-Staff-2026!"  # noqa: S105 - the documented development demo password
