"""Wires settings, the database and the services together; one per process."""

from __future__ import annotations

from sqlalchemy import select

from .auth.authenticate import Authenticator
from .config import Settings
from .crypto import tokens
from .crypto.passwords import HashParameters, PasswordHashing
from .crypto.sealing import Sealer, decode_key, load_or_create_key
from .crypto.signing import SigningKeys
from .oauth.access_tokens import JWT_PREFIX, AccessTokens
from .sessions.bearer import SessionBearer
from .sessions.service import SessionService
from .store import migrate
from .store.db import Database
from .store.schema import instances
from .users.credentials import CredentialChecker
from .users.keys import MachineKeys
from .users.orgs import OrgService
from .users.passwords import PasswordPolicy
from .users.service import UserService


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.uses_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
        self.hashing = PasswordHashing(HashParameters(
            memory_kib=settings.password_memory_kib, time_cost=settings.password_time_cost,
            parallelism=settings.password_parallelism), workers=settings.password_hashing_threads or None)
        self.policy = PasswordPolicy(
            min_length=settings.password_min_length, require_upper=settings.password_require_upper,
            require_lower=settings.password_require_lower, require_digit=settings.password_require_digit,
            require_symbol=settings.password_require_symbol)
        key = (decode_key(settings.secrets_key) if settings.secrets_key
               else load_or_create_key(settings.data_dir / "secrets.key"))
        self.sealer = Sealer(key)
        self.users = UserService(self.db, self.hashing, self.policy, self.sealer, settings.instance_name)
        self.orgs = OrgService(self.db, self.users, settings.org_domain)
        self.authenticator = Authenticator(self.db)
        self.credentials = CredentialChecker(self.db, self.hashing, self.sealer, self.users)
        self.sessions = SessionService(self.db, self.users, self.credentials, settings, instance_id="")
        self._default_org_id = ""
        self.authenticator.register(tokens.SESSION_TOKEN_PREFIX, SessionBearer(self.db).resolve)
        # OAuth for service users: machine keys and secrets, signing keys, access tokens
        self.machine_keys = MachineKeys(self.db)
        self.signing_keys = SigningKeys(self.db, self.sealer, settings.access_token_lifetime_seconds * 1_000_000)
        self.access_tokens = AccessTokens(self.db, self.signing_keys, settings.issuer,
                                          settings.access_token_lifetime_seconds)
        self.authenticator.register(tokens.ACCESS_TOKEN_PREFIX, self.access_tokens.resolve)
        self.authenticator.register(JWT_PREFIX, self.access_tokens.resolve)

    @property
    def instance_id(self) -> str:
        return self.sessions.instance_id

    @instance_id.setter
    def instance_id(self, value: str) -> None:
        self.sessions.instance_id = value

    def migrate(self) -> None:
        migrate.upgrade(self.db)

    async def load_instance_id(self) -> str:
        instance_id = await self.db.read(lambda conn: conn.execute(select(instances.c.id)).scalar())
        self.instance_id = instance_id or ""
        return self.instance_id

    async def default_org_id(self) -> str:
        # Bootstrap sets the default organization and nothing changes it, so one read per process holds.
        if not self._default_org_id:
            org_id: str | None = await self.db.read(
                lambda conn: conn.execute(select(instances.c.default_org_id)).scalar())
            self._default_org_id = org_id or ""
        return self._default_org_id

    def close(self) -> None:
        self.db.dispose()
