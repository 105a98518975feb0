"""Creates the peer's SQLite database: users (one shared argon2 hash) and access tokens.

Run with the peer's interpreter: ``seed.py DB USERS TOKENS PASSWORD OUT_DIR``. Writes
``OUT_DIR/peer_users.tsv`` (id, e-mail) and ``OUT_DIR/peer_tokens.tsv`` (token, user id).
Rows go in through the peer's own SQLAlchemy models, so their formats are the library's.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app as peer


def main() -> None:
    db, password, out = sys.argv[1], sys.argv[4], Path(sys.argv[5])
    n_users, n_tokens = int(sys.argv[2]), int(sys.argv[3])
    engine = create_engine(f"sqlite:///{db}")
    peer.Base.metadata.create_all(engine)
    hashed = peer.PASSWORDS.hash(password)
    users = [(uuid.uuid4(), f"peer{i:07d}@example.com") for i in range(n_users)]
    now = datetime.now(UTC)
    keep = min(n_tokens, 20_000)
    kept: list[tuple[str, uuid.UUID]] = []
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.execute(insert(peer.User), [{"id": uid, "email": email, "hashed_password": hashed, "is_active": True,
                                          "is_superuser": False, "is_verified": True} for uid, email in users])
        step = max(1, n_tokens // keep)
        for start in range(0, n_tokens, 50_000):
            rows = []
            for i in range(start, min(n_tokens, start + 50_000)):
                token = secrets.token_urlsafe()
                user_id = users[i % n_users][0]
                rows.append({"token": token, "user_id": user_id, "created_at": now - timedelta(seconds=i % 86400)})
                if i % step == 0 and len(kept) < keep:
                    kept.append((token, user_id))
            conn.execute(insert(peer.AccessToken), rows)
    engine.dispose()
    (out / "peer_users.tsv").write_text("".join(f"{uid}\t{email}\n" for uid, email in users))
    (out / "peer_tokens.tsv").write_text("".join(f"{uid}\t{token}\n" for token, uid in kept))


if __name__ == "__main__":
    main()
