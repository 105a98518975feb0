"""Settings from command-line flags, ``TESSERA_*`` environment variables and a TOML file.

Precedence: flags, then environment, then the TOML file (``--config`` or ``TESSERA_CONFIG``),
then defaults. Every setting has the same name in all three places: ``--org-domain``,
``TESSERA_ORG_DOMAIN`` and ``org_domain = "..."``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "TESSERA_"


class ConfigError(ValueError):
    """A setting has a value Tessera cannot use."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".tessera")
    database_url: str = ""  # empty: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    external_url: str = ""  # empty: http://<host>:<port>
    admin_pat_file: str = ""  # empty: <data_dir>/admin.pat
    instance_name: str = "Tessera"
    org_name: str = "Tessera"
    org_domain: str = "tessera.localhost"
    admin_username: str = "tessera-admin"
    secrets_key: str = ""  # base64url 32 bytes; empty: <data_dir>/secrets.key
    log_level: str = "info"
    db_pool_size: int = 8
    # argon2id cost for new password hashes (OWASP minimum by default)
    password_memory_kib: int = 19456
    password_time_cost: int = 2
    password_parallelism: int = 1
    # threads hashing and verifying passwords in each process (0: the cores shared out over the processes)
    password_hashing_threads: int = 0
    password_min_length: int = 8
    password_require_upper: bool = True
    password_require_lower: bool = True
    password_require_digit: bool = True
    password_require_symbol: bool = False
    # list paging
    default_query_limit: int = 100
    max_query_limit: int = 1000
    # periodic deletion of expired sessions and ended sessions' tombstones (0 disables it)
    prune_interval_seconds: int = 0
    prune_retention_seconds: int = 86400
    # request size and session metadata limits
    max_body_bytes: int = 1_048_576
    max_metadata_keys: int = 50
    max_metadata_key_length: int = 200
    max_metadata_value_bytes: int = 4096
    # OAuth access tokens issued by /oauth/v2/token (12 hours, as ZITADEL)
    access_token_lifetime_seconds: int = 43200
    # gRPC over HTTP/2 on a port of its own (-1: port + 1; 0: no gRPC listener); TLS on it when a
    # PEM certificate chain and key are given. gRPC-Web is served on the HTTP port either way.
    grpc_port: int = -1
    grpc_tls_cert: str = ""
    grpc_tls_key: str = ""
    # browser origins allowed to call the APIs (gRPC-Web, Connect, REST): comma-separated, or *
    cors_origins: str = ""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "tessera.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def uses_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def issuer(self) -> str:
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_grpc_port(self) -> int:
        """The gRPC port, or 0 when gRPC over HTTP/2 is turned off."""
        return self.port + 1 if self.grpc_port < 0 else self.grpc_port

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def admin_pat_path(self) -> Path | None:
        if self.admin_pat_file:
            return Path(self.admin_pat_file)
        return self.data_dir / "admin.pat"


def _coerce(name: str, raw: Any, target: Any) -> Any:
    if isinstance(target, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    if isinstance(target, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if isinstance(target, Path):
        return Path(str(raw))
    if not isinstance(raw, str):
        raise ConfigError(f"{name}: expected a string, got {raw!r}")
    return raw


def load_settings(
    flags: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge defaults, the TOML file, the environment and flags (``None`` flags are unset)."""
    env = dict(os.environ if environ is None else environ)
    defaults = Settings()
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        unknown = set(file_values) - names
        if unknown:
            raise ConfigError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        values.update(file_values)

    for name in names:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]

    for name, value in (flags or {}).items():
        if value is not None and name in names:
            values[name] = value

    coerced = {n: _coerce(n, v, getattr(defaults, n)) for n, v in values.items()}
    settings = dataclasses.replace(defaults, **coerced)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if not (0 < s.port < 65536):
        raise ConfigError(f"port: {s.port} is not a TCP port")
    if s.effective_grpc_port and not (0 < s.effective_grpc_port < 65536):
        raise ConfigError(f"grpc_port: {s.effective_grpc_port} is not a TCP port (0 turns gRPC off)")
    if s.effective_grpc_port == s.port:
        raise ConfigError("grpc_port must differ from port (gRPC needs HTTP/2, served on a port of its own)")
    if bool(s.grpc_tls_cert) != bool(s.grpc_tls_key):
        raise ConfigError("grpc_tls_cert and grpc_tls_key must be given together")
    if s.default_query_limit <= 0 or s.max_query_limit < s.default_query_limit:
        raise ConfigError("default_query_limit must be positive and at most max_query_limit")
    if s.password_hashing_threads < 0:
        raise ConfigError("password_hashing_threads must be 0 (automatic) or more")
    if s.password_min_length < 1:
        raise ConfigError("password_min_length must be at least 1")
    if s.access_token_lifetime_seconds < 60:
        raise ConfigError("access_token_lifetime_seconds must be at least 60")
    if s.database_url and not s.database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
