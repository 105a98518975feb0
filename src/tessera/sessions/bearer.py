"""A session token used as an OAuth2 bearer token.

The caller becomes the session's checked user, with that user's own permissions. A token is
refused when it is not the session's current token, the session is expired or ended, no
authentication factor beyond the user check was verified, the user is no longer active, or the
login policy forces MFA and the session has a single factor.
"""

from __future__ import annotations

from ..auth.principal import Principal
from ..clock import now_us
from ..crypto import tokens
from ..store import users as user_store
from ..store.db import Database
from ..users.model import UserState


class SessionBearer:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def resolve(self, token: str) -> Principal | None:
        session_id = tokens.session_id_of(token)
        if session_id is None:
            return None
        caller = await user_store.read_session_caller(self.db, session_id)  # live sessions only, never a tombstone
        if caller is None or not tokens.same_hash(token, caller.token_hash):
            return None
        if caller.expires_at is not None and caller.expires_at <= now_us():
            return None
        factors, user = caller.factors, caller.user
        if factors.authentication_factors() == 0 or user.state != UserState.ACTIVE:
            return None
        if caller.force_mfa and not user.is_machine and not factors.is_multi_factor():
            return None
        return Principal(user_id=user.id, org_id=user.org_id, is_machine=user.is_machine, method="session",
                         grants=caller.grants, session_id=session_id, user=user)
