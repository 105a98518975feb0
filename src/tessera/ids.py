"""Decimal, time-ordered IDs like ZITADEL's (e.g. ``"222430354126975533"``).

Layout: milliseconds since 2023-01-01 (41 bits) | node (10 bits, random per process) | counter (12 bits).
Several processes on one database pick random nodes; the counter makes IDs unique within a millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_EPOCH_MS = 1_672_531_200_000


class IdGenerator:
    def __init__(self, node: int | None = None) -> None:
        self._node = secrets.randbelow(1024) if node is None else node & 0x3FF
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def next_id(self) -> str:
        with self._lock:
            now = int(time.time() * 1000) - _EPOCH_MS
            if now <= self._last_ms:
                now = self._last_ms
                self._counter = (self._counter + 1) & 0xFFF
                if self._counter == 0:
                    now += 1  # counter exhausted in this millisecond: borrow the next one
            else:
                self._counter = 0
            self._last_ms = now
            return str((now << 22) | (self._node << 12) | self._counter)


_default = IdGenerator()


def new_id() -> str:
    return _default.next_id()
