"""The relational schema. Times are integer microseconds since the Unix epoch (UTC).

State tables hold the current state of each aggregate; ``events`` is the append-only audit log
written in the same transaction as every state change.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("default_org_id", String(40), nullable=False),
    Column("admin_user_id", String(40), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_lower", String(200), nullable=False, unique=True),
    Column("state", Integer, nullable=False),
    Column("primary_domain", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
)

org_domains = Table(
    "org_domains",
    metadata,
    Column("domain_lower", String(255), primary_key=True),
    Column("org_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("domain", String(255), nullable=False),
    Column("is_primary", Boolean, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("org_id", ForeignKey("organizations.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # "human" or "machine"
    Column("username", String(200), nullable=False),
    Column("username_lower", String(200), nullable=False, unique=True),
    Column("state", Integer, nullable=False),
    Column("given_name", String(200)),
    Column("family_name", String(200)),
    Column("nick_name", String(200)),
    Column("display_name", String(200)),
    Column("preferred_language", String(20)),
    Column("gender", Integer, nullable=False, default=0),
    Column("email", String(320)),
    Column("email_lower", String(320), index=True),
    Column("email_verified", Boolean, nullable=False, default=False),
    Column("phone", String(40)),
    Column("phone_verified", Boolean, nullable=False, default=False),
    Column("password_hash", String(255)),
    Column("password_change_required", Boolean, nullable=False, default=False),
    Column("password_changed_at", BigInteger),
    Column("totp_secret", String(255)),
    Column("totp_ready", Boolean, nullable=False, default=False),
    Column("totp_last_step", BigInteger),
    Column("failed_password_attempts", Integer, nullable=False, default=0),
    Column("failed_otp_attempts", Integer, nullable=False, default=0),
    Column("machine_name", String(200)),
    Column("machine_description", String(500)),
    Column("access_token_type", Integer, nullable=False, default=0),
    Column("secret_hash", LargeBinary(32)),  # SHA-256 of a machine user's generated client secret
    Column("created_at", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # "" for an instance-level grant, otherwise the organization ID.
    Column("scope", String(40), primary_key=True),
    Column("role", String(60), primary_key=True),
)

personal_access_tokens = Table(
    "personal_access_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("expires_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("creator_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("user_org_id", String(40)),
    Column("user_checked_at", BigInteger),
    Column("password_checked_at", BigInteger),
    Column("totp_checked_at", BigInteger),
    Column("otp_sms_checked_at", BigInteger),
    Column("otp_email_checked_at", BigInteger),
    Column("intent_checked_at", BigInteger),
    Column("webauthn_checked_at", BigInteger),
    Column("webauthn_user_verified", Boolean),
    Column("metadata", Text),  # JSON object of key -> base64 value, NULL when empty
    Column("user_agent", Text),  # JSON object, NULL when nothing was given
    Column("fingerprint_id", String(200)),
    Column("token_hash", LargeBinary(32), nullable=False),
    Column("expires_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    # Set when the session ends. The row stays as a tombstone, keeping the last token's hash so that
    # DeleteSession with that token stays idempotent, until pruning removes it; reads skip tombstones.
    Column("terminated_at", BigInteger),
    # Listing by user only ever asks for live sessions, so tombstones stay out of this index.
    Index("ix_sessions_user_id_created_at", "user_id", "created_at",
          sqlite_where=text("terminated_at IS NULL"), postgresql_where=text("terminated_at IS NULL")),
    Index("ix_sessions_creator_id", "creator_id"),
    Index("ix_sessions_created_at", "created_at"),
    Index("ix_sessions_expires_at", "expires_at"),
    Index("ix_sessions_fingerprint_id", "fingerprint_id"),
    Index("ix_sessions_terminated_at", "terminated_at",  # pruning finds old tombstones
          sqlite_where=text("terminated_at IS NOT NULL"), postgresql_where=text("terminated_at IS NOT NULL")),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("aggregate_type", String(20), nullable=False),
    Column("aggregate_id", String(200), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("type", String(60), nullable=False),
    Column("payload", Text),
    Column("creator", String(200)),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("aggregate_type", "aggregate_id", "sequence"),
)

login_policies = Table(
    "login_policies",
    metadata,
    # "" for the instance default, otherwise an organization ID that overrides it.
    Column("scope", String(40), primary_key=True),
    Column("max_password_attempts", Integer, nullable=False, default=0),
    Column("max_otp_attempts", Integer, nullable=False, default=0),
    Column("force_mfa", Boolean, nullable=False, default=False),
)


# ---- OAuth: machine keys, access tokens, assertion IDs, instance signing keys ----------------

machine_keys = Table(
    "machine_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("public_key", Text, nullable=False),  # PEM (SubjectPublicKeyInfo); the private key is never stored
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

oauth_access_tokens = Table(
    "oauth_access_tokens",
    metadata,
    Column("id", String(40), primary_key=True),  # also the ``jti`` of a JWT access token
    Column("token_hash", LargeBinary(32), unique=True),  # opaque tokens only; NULL for JWTs
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("client_id", String(200), nullable=False),
    Column("format", String(8), nullable=False),  # "opaque" or "jwt"
    Column("scopes", Text, nullable=False),  # space-separated
    # what obtained it: "key:<id>" or "secret"; removing that credential revokes the token
    Column("credential", String(60), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("revoked_at", BigInteger),
    Index("ix_oauth_access_tokens_user_id_credential", "user_id", "credential"),
)

# JWT assertion IDs seen at the token, introspection and revocation endpoints, kept until the
# assertion expires, so that an assertion with a ``jti`` is accepted once.
oauth_assertion_ids = Table(
    "oauth_assertion_ids",
    metadata,
    Column("issuer", String(200), primary_key=True),
    Column("jti", String(200), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # the ``kid``
    Column("algorithm", String(10), nullable=False),
    Column("private_key", Text, nullable=False),  # PEM sealed with the instance secrets key
    Column("public_jwk", Text, nullable=False),  # JSON
    Column("created_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger),  # no longer signs; still published until published_until
    Column("published_until", BigInteger),
)
