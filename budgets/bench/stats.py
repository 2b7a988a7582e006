"""Percentiles and medians of latency samples (seconds in, microseconds out)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TypedDict


class Latency(TypedDict):
    n: int
    p50_us: float
    p99_us: float


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), by linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency(samples_s: Sequence[float]) -> Latency:
    return {
        "n": len(samples_s),
        "p50_us": percentile(samples_s, 50) * 1e6,
        "p99_us": percentile(samples_s, 99) * 1e6,
    }


def median(values: Sequence[float]) -> float:
    """Median that ignores missing values (NaN); NaN when nothing is left."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan
