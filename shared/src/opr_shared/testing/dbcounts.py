"""What the database server has counted, for tests that assert how many requests
a piece of work makes."""

from __future__ import annotations

from typing import Any


async def queries_on(db: Any, collection: str) -> int:
    """The queries the server has counted on ``collection`` of ``db`` (``top``)."""
    totals = (await db.client.admin.command("top"))["totals"]
    return int(totals.get(f"{db.name}.{collection}", {}).get("queries", {}).get("count", 0))
