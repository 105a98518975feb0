"""The peer: the users app a Python team gets from fastapi-users' documentation.

SQLAlchemy on SQLite through aiosqlite, the database token strategy (one row per access
token), bearer transport, and pwdlib's Argon2Hasher with the same parameters as Tessera
(``PEER_ARGON2_M``, ``PEER_ARGON2_T``, ``PEER_ARGON2_P``). Routes: ``POST /auth/login``
(form: username=e-mail, password) and ``GET /users/me``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase, SQLAlchemyBaseAccessTokenTableUUID
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ.get("PEER_DATABASE_URL", "sqlite+aiosqlite:///./peer.db")
TOKEN_LIFETIME_SECONDS = 30 * 86400


def password_helper() -> PasswordHelper:
    hasher = Argon2Hasher(time_cost=int(os.environ.get("PEER_ARGON2_T", "2")),
                          memory_cost=int(os.environ.get("PEER_ARGON2_M", "19456")),
                          parallelism=int(os.environ.get("PEER_ARGON2_P", "1")))
    return PasswordHelper(PasswordHash((hasher,)))


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


# SQLite's default 5 s lock wait is shorter than a queue of 64 logins whose password checks block the
# event loop; the peer waits like any deployed SQLite app would, instead of answering 500.
engine = create_async_engine(DATABASE_URL, connect_args={"timeout": 60})
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)
PASSWORDS = password_helper()


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)):  # type: ignore[no-untyped-def]  # noqa: B008
    yield SQLAlchemyUserDatabase(session, User)


async def get_access_token_db(session: AsyncSession = Depends(get_async_session)):  # type: ignore[no-untyped-def]  # noqa: B008
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = "bench-not-a-secret"
    verification_token_secret = "bench-not-a-secret"


async def get_user_manager(user_db: SQLAlchemyUserDatabase = Depends(get_user_db)):  # type: ignore[no-untyped-def]  # noqa: B008
    yield UserManager(user_db, PASSWORDS)


def get_database_strategy(
    access_token_db: AccessTokenDatabase[AccessToken] = Depends(get_access_token_db),  # noqa: B008
) -> DatabaseStrategy:  # type: ignore[type-arg]
    return DatabaseStrategy(access_token_db, lifetime_seconds=TOKEN_LIFETIME_SECONDS)


auth_backend = AuthenticationBackend(name="db", transport=BearerTransport(tokenUrl="auth/login"),
                                     get_strategy=get_database_strategy)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])

app = FastAPI()
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth")
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
