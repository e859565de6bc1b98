"""The admitted-student roster: validating a row and reconciling it with the record."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from opr_shared.events.catalogue import AdmissionRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

# The particulars a roster row carries; a change to any of them is a correction.
PARTICULARS = (
    "jupas_app_no",
    "surname",
    "given_names",
    "chinese_name",
    "date_of_birth",
    "personal_email",
    "mobile",
    "programme_code",
    "programme_name",
    "intake_year",
    "admission_route",
    "study_level",
)


def _parse_date(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise ValueError("date must be YYYY-MM-DD or DD/MM/YYYY")
    return value


class AdmissionRow(BaseModel):
    """One admitted student as the registry's roster gives it."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    student_no: str = Field(pattern=r"^\d{8}$", description="University student number, 8 digits.")
    jupas_app_no: str | None = Field(default=None, pattern=r"^\d{8}$")
    surname: str = Field(min_length=1, max_length=80)
    given_names: str = Field(min_length=1, max_length=120)
    chinese_name: str | None = Field(default=None, max_length=40)
    date_of_birth: date
    personal_email: str = Field(max_length=254)
    mobile: str = Field(pattern=r"^\+?[0-9][0-9 -]{6,18}[0-9]$")
    programme_code: str = Field(min_length=1, max_length=20)
    programme_name: str = Field(min_length=1, max_length=200)
    intake_year: int = Field(ge=2000, le=2100)
    admission_route: AdmissionRoute
    study_level: Literal["undergraduate", "postgraduate"] = "undergraduate"

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return _parse_date(value)

    @field_validator("chinese_name", "jupas_app_no", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("personal_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value.lower()

    @model_validator(mode="after")
    def _jupas_needs_application_no(self) -> AdmissionRow:
        if self.admission_route == AdmissionRoute.JUPAS and not self.jupas_app_no:
            raise ValueError("a JUPAS entrant needs a JUPAS application number")
        return self

    def particulars(self) -> dict[str, Any]:
        return self.model_dump(include=set(PARTICULARS), mode="json")


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based position in the roster
    field: str
    message: str


def validate_rows(raw_rows: list[Any]) -> tuple[list[tuple[int, AdmissionRow]], list[RowError]]:
    """Validate every row on its own: bad rows are reported, good rows go on."""
    good: list[tuple[int, AdmissionRow]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rows, start=1):
        if not isinstance(raw, dict):
            errors.append(RowError(index, "", "row must be an object"))
            continue
        if "__cells__" in raw:
            errors.append(RowError(index, "", str(raw["__cells__"])))
            continue
        try:
            row = AdmissionRow.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                errors.append(RowError(index, loc, err["msg"]))
            continue
        if row.student_no in seen:
            errors.append(RowError(index, "student_no", f"duplicate of row {seen[row.student_no]}"))
            continue
        seen[row.student_no] = index
        good.append((index, row))
    return good, errors


@dataclass(frozen=True)
class RosterChange:
    kind: Literal["created", "updated", "unchanged"]
    changed_fields: list[str] = field(default_factory=list)


def reconcile(existing: dict[str, Any] | None, row: AdmissionRow) -> RosterChange:
    """Compare a row with the stored particulars (as JSON values)."""
    if existing is None:
        return RosterChange("created")
    new = row.particulars()
    changed = [name for name in PARTICULARS if existing.get(name) != new[name]]
    return RosterChange("updated", changed) if changed else RosterChange("unchanged")


class RosterFormatError(ValueError):
    """The roster as a whole cannot be read (not a row's fault)."""


REQUIRED_COLUMNS = (
    "student_no",
    "surname",
    "given_names",
    "date_of_birth",
    "personal_email",
    "mobile",
    "programme_code",
    "programme_name",
    "intake_year",
    "admission_route",
)


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """CSV with a header line naming the columns (as in the JSON form); an empty
    cell is an absent value. Rows are then validated one by one like JSON rows."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterFormatError("the CSV roster is empty: expected a header line") from None
    except csv.Error as exc:
        raise RosterFormatError(f"the CSV roster cannot be read: {exc}") from exc
    columns = [name.strip() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise RosterFormatError("the CSV header lacks column(s): " + ", ".join(missing))
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RosterFormatError("the CSV header repeats column(s): " + ", ".join(duplicated))
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(columns):
                rows.append({"__cells__": f"expected {len(columns)} cells, found {len(cells)}"})
                continue
            rows.append({k: v for k, v in zip(columns, cells, strict=True) if v.strip()})
    except csv.Error as exc:
        raise RosterFormatError(f"the CSV roster cannot be read: {exc}") from exc
    return rows
