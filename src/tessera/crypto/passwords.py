"""Password hashing: argon2id for new hashes, verification of imported bcrypt hashes.

Hashing is CPU-bound and runs on a thread pool so the event loop keeps serving; argon2-cffi and
bcrypt release the GIL while they work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHING_NICE = 10


@dataclass(frozen=True)
class HashParameters:
    """argon2id cost; the defaults are OWASP's minimum recommendation (19 MiB, t=2, p=1)."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be upgraded


def usable_cores() -> int:
    """The cores this process may run on (a CPU set given by a container or ``taskset`` counts)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(processes: int) -> int:
    """The usable cores shared out over ``processes`` server processes, at least one each.

    argon2 is memory-hard: more hashes at once than cores only make each one slower, as they take
    turns on the cores and evict each other's memory from the caches.
    """
    return max(1, usable_cores() // processes)


class PasswordHashing:
    def __init__(self, params: HashParameters | None = None, workers: int | None = None) -> None:
        self.params = params or HashParameters()
        self.workers = workers or threads_per_process(1)
        self._hasher = PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_kib,
            parallelism=self.params.parallelism,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pwhash",
                                        initializer=_yield_to_event_loop)
        # A fixed hash to verify against when a user has no password, so that the
        # response time does not reveal it.
        self._dummy_hash = self._hasher.hash("tessera-dummy-password")

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, stored_hash: str | None, password: str) -> VerifyResult:
        if not stored_hash:
            self._verify_argon2(self._dummy_hash, password)
            return VerifyResult(False)
        if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
            # bcrypt only reads 72 bytes; truncate explicitly (bcrypt 5 refuses longer input).
            try:
                ok = bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
            except ValueError:  # an imported hash that only looks like bcrypt ("Invalid salt")
                ok = False
            return VerifyResult(ok, self._hasher.hash(password) if ok else None)
        ok = self._verify_argon2(stored_hash, password)
        if ok and self._hasher.check_needs_rehash(stored_hash):
            return VerifyResult(True, self._hasher.hash(password))
        return VerifyResult(ok)

    def _verify_argon2(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash_sync, password)

    async def verify(self, stored_hash: str | None, password: str) -> VerifyResult:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.verify_sync, stored_hash, password
        )


def _yield_to_event_loop() -> None:
    """Run this hashing thread at a lower CPU priority (Linux: nice applies per thread).

    Hashing alone can fill every core; at equal priority each cheap request then waits for a time
    slice behind it (get_session p99 in the hundreds of milliseconds during password_session,
    bench/RESULTS.md). Lower priority loses no hashing throughput: idle CPU still goes to hashing.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASHING_NICE)


def is_supported_hash(encoded: str) -> bool:
    """Whether an imported hash is in a format Tessera can verify."""
    return encoded.startswith(("$2a$", "$2b$", "$2y$", "$argon2id$", "$argon2i$"))
