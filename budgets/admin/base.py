"""What the ledger's and the holds' lists share: a capped count and no write access."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# The same read-only base as the personas' audit trail (records of what happened).
from personas.admin.display import ReadOnlyAdmin


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows: ``SELECT COUNT(*) FROM (... LIMIT CAP+1)``.

    A plain count of a million-row ledger costs a full scan on every page view; nobody
    pages through more than a hundred pages anyway. Past the cap the list says
    "more than 10,000" and the filters or the date hierarchy narrow it down.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        counted = int(object_list[: self.CAP + 1].count())
        return min(counted, self.CAP)

    @cached_property
    def capped(self) -> bool:
        object_list: Any = self.object_list
        return bool(self.count >= self.CAP and object_list[self.CAP : self.CAP + 1].exists())


__all__ = ["CappedCountPaginator", "ReadOnlyAdmin"]
