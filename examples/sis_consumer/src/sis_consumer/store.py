"""The student information system's enrolment table (SQLite)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrolments (
    student_no   TEXT PRIMARY KEY,
    intake_year  INTEGER NOT NULL,
    status       TEXT NOT NULL,       -- registered | withdrawn
    outstanding  TEXT NOT NULL,       -- JSON list of item keys still due
    changed_at   TEXT NOT NULL,
    event_id     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handled_events (
    event_id TEXT PRIMARY KEY
);
"""


@dataclass(frozen=True)
class Enrolment:
    student_no: str
    intake_year: int
    status: str
    outstanding: list[str]
    changed_at: str


class EnrolmentStore:
    def __init__(self, path: Path | str) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def record(
        self,
        *,
        event_id: UUID,
        student_no: str,
        intake_year: int,
        status: str,
        outstanding: list[str],
        changed_at: str,
    ) -> bool:
        """Apply one event's change; False if that event was applied before."""
        with self.db:  # one transaction: the change and the handled mark
            self.db.execute("BEGIN")
            seen = self.db.execute(
                "SELECT 1 FROM handled_events WHERE event_id = ?", (str(event_id),)
            ).fetchone()
            if seen:
                return False
            self.db.execute("INSERT INTO handled_events (event_id) VALUES (?)", (str(event_id),))
            self.db.execute(
                """
                INSERT INTO enrolments
                    (student_no, intake_year, status, outstanding, changed_at, event_id)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (student_no) DO UPDATE SET
                    intake_year = excluded.intake_year, status = excluded.status,
                    outstanding = excluded.outstanding, changed_at = excluded.changed_at,
                    event_id = excluded.event_id
                """,
                (
                    student_no,
                    intake_year,
                    status,
                    json.dumps(outstanding),
                    changed_at,
                    str(event_id),
                ),
            )
            return True

    def get(self, student_no: str) -> Enrolment | None:
        row = self.db.execute(
            "SELECT student_no, intake_year, status, outstanding, changed_at "
            "FROM enrolments WHERE student_no = ?",
            (student_no,),
        ).fetchone()
        if row is None:
            return None
        return Enrolment(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def count(self) -> int:
        (n,) = self.db.execute("SELECT COUNT(*) FROM enrolments").fetchone()
        return int(n)
