"""What the budget API accepts, in one place for the views, the importer and the schema."""

from __future__ import annotations

# The Charge columns' length (surface, model, request_id) and the longest hold id accepted.
MAX_TEXT = 200
# Token counts are PositiveIntegerField: 32-bit signed on every database.
MAX_TOKENS = 2**31 - 1
