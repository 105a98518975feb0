"""A mixed session load from many concurrent clients, and the checks of what it left behind.

Clients create sessions (user and password checks), set metadata on random sessions (any client
may write any session, so writes race), read, list, delete, and send wrong passwords. Every
answer is recorded; a write whose answer never came (a killed server, a dropped connection) is
recorded as *unknown*: it may or may not have been applied, and the checks allow both.

``verify`` then asserts, for every session the clients know:
- its state is that of the acknowledged write with the highest sequence (or of an unknown write
  that came after it), and deleted sessions are gone;
- its events are numbered 1..n without gaps or repeats, one per write, and match the row;
- no two acknowledged writes got the same sequence;
- only the token of its latest write works; every older token is refused.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..conftest import ServerProcess
from ..helpers import PASSWORD, add_human
from .support import Db, session_events

SESSION = "/zitadel.session.v2.SessionService/"

# What the clients may see without any fault: successes, and the refusals that racing clients cause
# each other (a session deleted by one client while another writes or reads it) or ask for (wrong
# passwords). No 5xx, no ``aborted``, no ``unavailable``.
EXPECTED_UNDER_LOAD = {"200", "404 not_found", "400 failed_precondition", "400 invalid_argument"}


@dataclass
class Write:
    sequence: int | None  # None: unknown whether or where it landed
    token: str | None
    value: str


@dataclass
class Tracked:
    session_id: str
    writes: list[Write] = field(default_factory=list)
    deleted: bool = False
    maybe_deleted: bool = False

    @property
    def acked(self) -> list[Write]:
        return [w for w in self.writes if w.sequence is not None]

    @property
    def unknown(self) -> list[Write]:
        return [w for w in self.writes if w.sequence is None]


@dataclass
class LoadResult:
    sessions: dict[str, Tracked]
    outcomes: Counter[str]
    requests: int
    seconds: float


class Load:
    """Run with ``run(seconds)``; ``stop_when`` lets a fault injector end it early."""

    def __init__(self, server: ServerProcess, *, clients: int = 12, users: int = 4, seed: int = 8) -> None:
        self.server = server
        self.clients = clients
        self.random = random.Random(seed)
        self.user_ids = [add_human(server)["id"] for _ in range(users)]
        self.sessions: dict[str, Tracked] = {}
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.requests = 0
        self.stop = threading.Event()

    # ---- one client -----------------------------------------------------------------------------

    def _post(self, client: httpx.Client, method: str, body: dict[str, Any]) -> httpx.Response | str:
        """The answer, or 'refused' (never reached the server) or 'lost' (sent, no answer)."""
        try:
            answer = client.post(self.server.url + SESSION + method, json=body,
                                 headers={"authorization": f"Bearer {self.server.admin_pat}"})
        except httpx.ConnectError:
            time.sleep(0.02)  # the server is down: do not spin
            return "refused"
        except httpx.HTTPError:
            return "lost"
        if answer.status_code == 503:
            time.sleep(0.02)  # the database is down; a write that got 503 may still have committed
        return answer

    def _note(self, method: str, answer: httpx.Response | str) -> None:
        label = answer if isinstance(answer, str) else str(answer.status_code)
        if not isinstance(answer, str) and answer.status_code >= 400:
            label += " " + str(answer.json().get("code", ""))
        with self.lock:
            self.outcomes[f"{method} {label}"] += 1
            self.requests += 1

    def _pick(self, rng: random.Random) -> Tracked | None:
        with self.lock:
            live = [s for s in self.sessions.values() if not s.deleted and not s.maybe_deleted]
            return rng.choice(live) if live else None

    def _client(self, index: int) -> None:
        rng = random.Random(self.random.random() + index)
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.2 or not self.sessions:
                    self._create(client, rng)
                elif roll < 0.55:
                    self._set(client, rng)
                elif roll < 0.65:
                    self._get(client, rng)
                elif roll < 0.72:
                    self._list(client, rng)
                elif roll < 0.77:
                    self._delete(client, rng)
                else:
                    self._wrong_password(client, rng)

    def _create(self, client: httpx.Client, rng: random.Random) -> None:
        value = uuid.uuid4().hex
        body = {"checks": {"user": {"userId": rng.choice(self.user_ids)}, "password": {"password": PASSWORD}},
                "metadata": {"w": _b64(value)}}
        answer = self._post(client, "CreateSession", body)
        self._note("CreateSession", answer)
        if isinstance(answer, httpx.Response) and answer.status_code == 200:
            data = answer.json()
            tracked = Tracked(data["sessionId"], [Write(int(data["details"]["sequence"]), data["sessionToken"], value)])
            with self.lock:
                self.sessions[tracked.session_id] = tracked

    def _set(self, client: httpx.Client, rng: random.Random) -> None:
        tracked = self._pick(rng)
        if tracked is None:
            return
        value = uuid.uuid4().hex
        answer = self._post(client, "SetSession", {"sessionId": tracked.session_id, "metadata": {"w": _b64(value)}})
        self._note("SetSession", answer)
        with self.lock:
            if isinstance(answer, httpx.Response) and answer.status_code == 200:
                data = answer.json()
                tracked.writes.append(Write(int(data["details"]["sequence"]), data["sessionToken"], value))
            elif answer == "lost" or (isinstance(answer, httpx.Response) and answer.status_code == 503):
                tracked.writes.append(Write(None, None, value))

    def _get(self, client: httpx.Client, rng: random.Random) -> None:
        tracked = self._pick(rng)
        if tracked is not None:
            self._note("GetSession", self._post(client, "GetSession", {"sessionId": tracked.session_id}))

    def _list(self, client: httpx.Client, rng: random.Random) -> None:
        with self.lock:
            ids = rng.sample(list(self.sessions), min(5, len(self.sessions)))
        self._note("ListSessions", self._post(client, "ListSessions", {"queries": [{"idsQuery": {"ids": ids}}]}))

    def _delete(self, client: httpx.Client, rng: random.Random) -> None:
        tracked = self._pick(rng)
        if tracked is None:
            return
        answer = self._post(client, "DeleteSession", {"sessionId": tracked.session_id})
        self._note("DeleteSession", answer)
        with self.lock:
            if isinstance(answer, httpx.Response) and answer.status_code == 200:
                tracked.deleted = True
            elif answer == "lost" or (isinstance(answer, httpx.Response) and answer.status_code == 503):
                tracked.maybe_deleted = True

    def _wrong_password(self, client: httpx.Client, rng: random.Random) -> None:
        tracked = self._pick(rng)
        if tracked is None:
            return
        answer = self._post(client, "SetSession", {"sessionId": tracked.session_id,
                                                   "checks": {"password": {"password": "Wrong-Passw0rd!"}}})
        self._note("WrongPassword", answer)

    # ---- running ------------------------------------------------------------------------------------

    def run(self, seconds: float, *, fault: Callable[[], None] | None = None, fault_after: float = 0.0) -> LoadResult:
        """Load for ``seconds``; ``fault`` runs in this thread ``fault_after`` seconds in."""
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        if fault is not None:
            time.sleep(fault_after)
            fault()
        remaining = seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        return LoadResult(self.sessions, self.outcomes, self.requests, time.monotonic() - started)


def _b64(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode()


# ---- checks -------------------------------------------------------------------------------------------------


def live_session_rows(db: Db) -> dict[str, tuple[int, Any]]:
    """(sequence, metadata) of every live session row; ended sessions may stay as tombstones."""
    with db.engine.connect() as conn:
        from sqlalchemy import text

        columns = list(conn.execute(text("SELECT * FROM sessions WHERE 1 = 0")).keys())
    live = " WHERE terminated_at IS NULL" if "terminated_at" in columns else ""
    return {str(r[0]): (int(r[1]), r[2]) for r in db.rows(f"SELECT id, sequence, metadata FROM sessions{live}")}


def verify(server: ServerProcess, db: Db, result: LoadResult, *, max_old_tokens: int = 400) -> dict[str, int]:
    """Assert the properties in the module docstring; returns what was checked, for the report."""
    import base64

    events = session_events(db)
    rows = live_session_rows(db)
    checked = Counter[str]()
    old_tokens: list[str] = []
    with httpx.Client(timeout=30) as client:
        admin = {"authorization": f"Bearer {server.admin_pat}"}

        def get(session_id: str, token: str | None = None) -> httpx.Response:
            body = {"sessionId": session_id, **({"sessionToken": token} if token else {})}
            return client.post(server.url + SESSION + "GetSession", json=body, headers=admin)

        # Every session in the database, known to the clients or not: events 1..n, one per write.
        for session_id, history in events.items():
            sequences = [s for s, _ in history]
            assert sequences == list(range(1, len(sequences) + 1)), f"{session_id}: sequences {sequences}"
            assert history[0][1] == "session.added", f"{session_id}: first event {history[0]}"
            if session_id in rows:
                assert rows[session_id][0] == sequences[-1], f"{session_id}: row {rows[session_id]} vs {history[-1]}"
            else:
                assert history[-1][1] == "session.terminated", f"{session_id}: no row but {history[-1]}"
            checked["event histories"] += 1
        for session_id in rows:
            assert session_id in events, f"{session_id}: a session row without events"

        for tracked in result.sessions.values():
            acked = sorted(tracked.acked, key=lambda w: w.sequence or 0)
            sequences = [w.sequence for w in acked]
            assert len(sequences) == len(set(sequences)), f"{tracked.session_id}: repeated sequences {sequences}"
            history = events.get(tracked.session_id, [])
            written = [s for s, kind in history if kind != "session.terminated"]
            last = acked[-1]
            assert written and written[-1] >= (last.sequence or 0), f"{tracked.session_id}: acknowledged write lost"
            extra = len(written) - len(acked)
            assert 0 <= extra <= len(tracked.unknown), \
                f"{tracked.session_id}: {len(written)} events for {len(acked)} acknowledged writes"
            if tracked.deleted or (tracked.maybe_deleted and tracked.session_id not in rows):
                assert tracked.session_id not in rows, \
                    f"{tracked.session_id}: deleted but still there: {tracked} {history} {rows[tracked.session_id]}"
                assert get(tracked.session_id).status_code == 404
                checked["deleted sessions"] += 1
                continue
            answer = get(tracked.session_id)
            assert answer.status_code == 200, answer.text
            session = answer.json()["session"]
            current = int(session["sequence"])
            value = base64.b64decode(session["metadata"]["w"]).decode()
            if current == last.sequence:
                assert value == last.value, f"{tracked.session_id}: state is not the last acknowledged write"
                latest_token = last.token
            else:
                assert current > (last.sequence or 0) and value in {w.value for w in tracked.unknown}, \
                    f"{tracked.session_id}: at {current} with a value no write sent"
                latest_token = None  # the token of an unacknowledged write was never seen
            if latest_token is not None:
                assert get(tracked.session_id, latest_token).status_code == 200, "the latest token is refused"
                checked["latest tokens"] += 1
            old_tokens += [f"{tracked.session_id} {w.token}" for w in acked if w.token != latest_token and w.token]
            checked["live sessions"] += 1

        rng = random.Random(3)
        for entry in rng.sample(old_tokens, min(max_old_tokens, len(old_tokens))):
            session_id, token = entry.split(" ")
            refused = get(session_id, token)
            assert refused.status_code == 403, f"an older token still works: {refused.text[:200]}"
            checked["older tokens refused"] += 1
    checked["acknowledged writes"] = sum(len(t.acked) for t in result.sessions.values())
    checked["unknown writes"] = sum(len(t.unknown) for t in result.sessions.values())
    return dict(checked)
