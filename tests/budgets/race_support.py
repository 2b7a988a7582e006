"""Real threads for the race tests: each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def run_clients(clients: int, target: Callable[[int], None]) -> list[BaseException]:
    """Start ``clients`` threads together (a barrier), each calling ``target(n)``; the
    exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def worker(n: int) -> None:
        try:
            start.wait()
            target(n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            # Each thread has its own connection; close it so the test database can be
            # dropped afterwards.
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors
