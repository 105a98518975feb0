"""The ``tessera`` command: serve, initialise, migrate, and manage users, orgs and tokens."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from .bootstrap import BootstrapError, InitResult, ensure_instance
from .clock import from_datetime, now_us, rfc3339
from .config import ConfigError, Settings, load_settings
from .container import Container
from .errors import TesseraError
from .store import policies
from .store.policies import LoginPolicy
from .users.model import User
from .users.queries import Page, TextMethod, UserSort
from .users.service import NewHuman, NewMachine, Profile

T = TypeVar("T")

app = typer.Typer(help="Tessera: a self-hosted identity session server speaking ZITADEL's v2 APIs.",
                  no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
orgs_app = typer.Typer(help="Manage organizations.", no_args_is_help=True)
pats_app = typer.Typer(help="Manage personal access tokens of machine users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(orgs_app, name="orgs")
app.add_typer(pats_app, name="pats")
sessions_app = typer.Typer(help="Manage sessions.", no_args_is_help=True)
policy_app = typer.Typer(help="Login policy: lockout limits and forced MFA.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
app.add_typer(policy_app, name="policy")

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data directory [env TESSERA_DATA_DIR; default ./.tessera]")]
Database = Annotated[str | None, typer.Option(
    "--database", help="postgresql+psycopg://… URL [env TESSERA_DATABASE_URL; default SQLite in the data dir]")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file [env TESSERA_CONFIG]")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table")]


def _settings(config: Path | None, **flags: Any) -> Settings:
    if "data_dir" in flags and flags["data_dir"] is None:
        flags.pop("data_dir")
    database = flags.pop("database", None)
    if database is not None:
        flags["database_url"] = database
    try:
        return load_settings(flags, config_file=config)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


def _database_reason(exc: SQLAlchemyError) -> str:
    """The driver's own first line (never the SQL or its parameters)."""
    reason = str(getattr(exc, "orig", None) or type(exc).__name__)
    return reason.splitlines()[0] if reason else type(exc).__name__


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _run(settings: Settings, work: Callable[[Container], Coroutine[Any, Any, T]], *, migrate: bool = True) -> T:
    """Open the database (migrating it first), run ``work``, close."""
    container = Container(settings)
    try:
        if migrate:
            container.migrate()
        return asyncio.run(work(container))
    except TesseraError as exc:
        _fail(exc.wire_message)
        raise
    except BootstrapError as exc:
        _fail(str(exc))
        raise
    finally:
        container.close()


def _print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _output(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows, columns)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        _fail("the password must not be empty")
    return password


def _announce(result: InitResult) -> None:
    if result.created:
        typer.echo(f"Created instance {result.instance_id} with administrator {result.admin_user_id}.")
        if result.pat_path is not None:
            typer.echo(f"Administrator personal access token written to {result.pat_path}")
    else:
        typer.echo(f"Instance {result.instance_id} already exists; nothing was created.")
        if result.pat_path is not None and result.pat_path.exists():
            typer.echo(f"Administrator personal access token: {result.pat_path}")


# ---- server ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default 8080]")] = None,
    data_dir: DataDir = None,
    database: Database = None,
    admin_pat_file: Annotated[str | None, typer.Option(help="Where the first start writes the admin PAT")] = None,
    external_url: Annotated[str | None, typer.Option(help="Public URL (issuer) [default http://HOST:PORT]")] = None,
    org_name: Annotated[str | None, typer.Option(help="Name of the default organization")] = None,
    org_domain: Annotated[str | None, typer.Option(help="Domain of the default organization")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC (HTTP/2) port; 0 turns it off [default PORT+1]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes sharing the port (one per core)")] = 1,
    config: ConfigFile = None,
) -> None:
    """Run the server (migrating and initialising the database first)."""
    from . import server

    settings = _settings(config, host=host, port=port, data_dir=data_dir, database=database,
                         admin_pat_file=admin_pat_file, external_url=external_url, org_name=org_name,
                         org_domain=org_domain, log_level=log_level, grpc_port=grpc_port)
    try:
        container = Container(settings)
    except OSError as exc:  # e.g. a read-only or missing data directory
        _fail(f"cannot use the data directory: {exc.strerror or exc}")
    try:
        container.migrate()
        result = asyncio.run(ensure_instance(container))
    except (BootstrapError, TesseraError) as exc:
        container.close()
        _fail(str(exc))
    except SQLAlchemyError as exc:  # unreachable, read-only or full database: one line, no traceback
        container.close()
        _fail(f"cannot use the database: {_database_reason(exc)}")
    _announce(result)
    # The engine and thread pools belonged to a finished event loop; serving starts afresh.
    container.close()
    grpc = settings.effective_grpc_port
    typer.echo(f"Tessera listening on http://{settings.host}:{settings.port}"
               + (f", gRPC on {'https' if settings.grpc_tls_cert else 'http'}://{settings.host}:{grpc}" if grpc else "")
               + (f" with {workers} workers" if workers > 1 else ""))
    try:
        server.serve(settings, result.instance_id, workers=workers)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def init(
    data_dir: DataDir = None,
    database: Database = None,
    admin_pat_file: Annotated[str | None, typer.Option(help="Where to write the admin PAT")] = None,
    org_name: Annotated[str | None, typer.Option(help="Name of the default organization")] = None,
    org_domain: Annotated[str | None, typer.Option(help="Domain of the default organization")] = None,
    config: ConfigFile = None,
) -> None:
    """Create the database, the default organization and the administrator, without serving."""
    settings = _settings(config, data_dir=data_dir, database=database, admin_pat_file=admin_pat_file,
                         org_name=org_name, org_domain=org_domain)
    _announce(_run(settings, ensure_instance))


@app.command()
def migrate(data_dir: DataDir = None, database: Database = None, config: ConfigFile = None) -> None:
    """Bring the database schema up to date (also done on every start)."""
    settings = _settings(config, data_dir=data_dir, database=database)
    container = Container(settings)
    try:
        container.migrate()
    finally:
        container.close()
    typer.echo("Database schema is up to date.")


# ---- users -------------------------------------------------------------------------------------


def _user_row(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "type": user.kind, "state": user.state.name.lower(),
            "org_id": user.org_id, "email": user.email, "login_name": user.preferred_login_name,
            "created": rfc3339(user.created_at)}


_USER_COLUMNS = ("id", "username", "type", "state", "email", "login_name")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name of the new user")],
    email: Annotated[str | None, typer.Option(help="E-mail address (humans)")] = None,
    given_name: Annotated[str | None, typer.Option(help="Given name (humans)")] = None,
    family_name: Annotated[str | None, typer.Option(help="Family name (humans)")] = None,
    machine: Annotated[bool, typer.Option("--machine", help="Create a machine (service) user")] = False,
    name: Annotated[str | None, typer.Option(help="Display name of a machine user")] = None,
    org: Annotated[str | None, typer.Option(help="Organization ID [default: the default organization]")] = None,
    password: Annotated[bool, typer.Option("--password", help="Prompt for a password (humans)")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Create a human user (default) or a machine user."""
    settings = _settings(config, data_dir=data_dir, database=database)
    secret = _read_password(password_stdin) if (password or password_stdin) and not machine else None

    async def work(c: Container) -> User:
        org_id = org or await c.default_org_id()
        if machine:
            user_id, _ = await c.users.add_machine(None, NewMachine(org_id=org_id, username=username,
                                                                   name=name or username))
        else:
            if not (email and given_name and family_name):
                _fail("humans need --email, --given-name and --family-name")
            user_id, _ = await c.users.add_human(None, NewHuman(
                org_id=org_id, org_domain=None, username=username, email=email or "", email_verified=True,
                profile=Profile(given_name=given_name or "", family_name=family_name or ""), password=secret))
        return await c.users.load(user_id)

    _output([_user_row(_run(settings, work))], _USER_COLUMNS, as_json)


@users_app.command("list")
def users_list(
    search: Annotated[str | None, typer.Option(help="Only users whose username contains this")] = None,
    limit: Annotated[int, typer.Option(help="At most this many users")] = 100,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """List users."""
    from .users.queries import TextQuery, UserField

    settings = _settings(config, data_dir=data_dir, database=database)
    query = TextQuery(UserField.USERNAME, search, TextMethod.CONTAINS_IGNORE_CASE) if search else None

    async def work(c: Container) -> list[User]:
        return (await c.users.list(None, query, Page(0, limit, True), UserSort.USER_NAME))[1]

    _output([_user_row(u) for u in _run(settings, work)], _USER_COLUMNS, as_json)


def _user_state_command(action: str, help_text: str) -> None:
    def command(
        user_id: Annotated[str, typer.Argument(help="User ID")],
        data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
    ) -> None:
        settings = _settings(config, data_dir=data_dir, database=database)

        async def work(c: Container) -> None:
            await getattr(c.users, action)(None, user_id)

        _run(settings, work)
        typer.echo(f"User {user_id}: {action} done.")

    command.__doc__ = help_text
    users_app.command(action)(command)


_user_state_command("lock", "Lock a user: no new sessions, existing ones end.")
_user_state_command("unlock", "Unlock a user and reset failed attempt counters.")
_user_state_command("delete", "Delete a user and end its sessions.")


@users_app.command("grant")
def users_grant(
    user_id: Annotated[str, typer.Argument(help="User ID")],
    role: Annotated[str, typer.Argument(help="IAM_OWNER, IAM_LOGIN_CLIENT or IAM_USER_MANAGER; with --org "
                                             "ORG_OWNER or ORG_USER_MANAGER")],
    org: Annotated[str | None, typer.Option(help="Grant the role on this organization only")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Give a user a role on the instance or on one organization (login clients need IAM_LOGIN_CLIENT)."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> bool:
        return await c.users.grant(user_id, role, org or "")

    added = _run(settings, work)
    where = f"organization {org}" if org else "the instance"
    typer.echo(f"User {user_id}: {role} on {where} " + ("granted." if added else "was already granted."))


# ---- organizations -------------------------------------------------------------------------------


@orgs_app.command("add")
def orgs_add(
    name: Annotated[str, typer.Argument(help="Organization name")],
    domain: Annotated[str | None, typer.Option(help="Primary domain [default: derived from the name]")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Create an organization."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> dict[str, Any]:
        org_id, _, _ = await c.orgs.add(None, name, domain=domain or "")
        org = await c.orgs.get(org_id)
        assert org is not None
        return {"id": org.id, "name": org.name, "domain": org.primary_domain}

    _output([_run(settings, work)], ("id", "name", "domain"), as_json)


@orgs_app.command("list")
def orgs_list(
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """List organizations."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> list[dict[str, Any]]:
        _, orgs = await c.orgs.list(None, [], Page(0, 1000, True), "name")
        return [{"id": o.id, "name": o.name, "domain": o.primary_domain, "created": rfc3339(o.created_at)}
                for o in orgs]

    _output(_run(settings, work), ("id", "name", "domain", "created"), as_json)


# ---- personal access tokens ------------------------------------------------------------------------


@pats_app.command("create")
def pats_create(
    user_id: Annotated[str, typer.Argument(help="Machine user ID")],
    expires: Annotated[datetime | None, typer.Option(help="Expiry (ISO 8601, UTC if no zone)")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Create a personal access token; it is printed once and never shown again."""
    settings = _settings(config, data_dir=data_dir, database=database)
    expires_us = from_datetime(expires.replace(tzinfo=expires.tzinfo or UTC)) if expires else None

    async def work(c: Container) -> dict[str, Any]:
        pat = await c.users.add_pat(None, user_id, expires_us)
        return {"token_id": pat.token_id, "token": pat.token}

    row = _run(settings, work)
    if as_json:
        typer.echo(json.dumps(row))
    else:
        typer.echo(f"Token ID: {row['token_id']}")
        typer.echo(row["token"])


@pats_app.command("list")
def pats_list(
    user_id: Annotated[str | None, typer.Option("--user", help="Only this user's tokens")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """List personal access tokens (never the tokens themselves)."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> list[dict[str, Any]]:
        _, pats = await c.users.list_pats(None, (user_id,) if user_id else None, None, None, Page(0, 1000, True))
        return [{"id": p.id, "user_id": p.user_id, "created": rfc3339(p.created_at),
                 "expires": rfc3339(p.expires_at) if p.expires_at else "never"} for p in pats]

    _output(_run(settings, work), ("id", "user_id", "created", "expires"), as_json)


@pats_app.command("revoke")
def pats_revoke(
    user_id: Annotated[str, typer.Argument(help="Machine user ID")],
    token_id: Annotated[str, typer.Argument(help="Token ID")],
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Revoke a personal access token; it stops working at once."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> None:
        await c.users.remove_pat(None, user_id, token_id)

    _run(settings, work)
    typer.echo(f"Token {token_id} revoked.")


# ---- sessions ----------------------------------------------------------------------------------------


@sessions_app.command("prune")
def sessions_prune(
    expired_before: Annotated[str, typer.Option(
        help="Delete sessions that expired or ended before this: a duration ago (7d, 24h, 30m) or an ISO 8601 time")],
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Delete expired sessions and the tombstones of ended ones; never a live one. Safe while the server runs."""
    from .sessions.pruning import parse_cutoff

    settings = _settings(config, data_dir=data_dir, database=database)
    try:
        cutoff = parse_cutoff(expired_before)
    except ValueError as exc:
        _fail(str(exc))
        raise
    cutoff = min(cutoff, now_us())  # a future cut-off would reach live sessions

    async def work(c: Container) -> int:
        return await c.sessions.prune_expired(cutoff)

    typer.echo(f"Deleted {_run(settings, work)} expired or ended sessions (before {rfc3339(cutoff)}).")


# ---- login policy ------------------------------------------------------------------------------------


def _policy_row(scope: str, policy: LoginPolicy) -> dict[str, Any]:
    return {"scope": scope or "instance", "max_password_attempts": policy.max_password_attempts,
            "max_otp_attempts": policy.max_otp_attempts, "force_mfa": policy.force_mfa}


_POLICY_COLUMNS = ("scope", "max_password_attempts", "max_otp_attempts", "force_mfa")


@policy_app.command("show")
def policy_show(
    org: Annotated[str | None, typer.Option(help="Organization ID [default: the instance default]")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Show the policy in force for the instance or an organization."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> LoginPolicy:
        return await c.db.read(lambda conn: policies.policy_for(conn, org))

    _output([_policy_row(org or "", _run(settings, work))], _POLICY_COLUMNS, as_json)


@policy_app.command("set")
def policy_set(
    org: Annotated[str | None, typer.Option(help="Organization ID [default: the instance default]")] = None,
    max_password_attempts: Annotated[int | None, typer.Option(
        min=0, help="Lock after this many wrong passwords (0: never)")] = None,
    max_otp_attempts: Annotated[int | None, typer.Option(
        min=0, help="Lock after this many wrong OTP codes (0: never)")] = None,
    force_mfa: Annotated[bool | None, typer.Option(
        "--force-mfa/--no-force-mfa", help="Require two factors for session tokens")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Change the instance default, or give an organization its own policy (starting from the default)."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> LoginPolicy:
        if org and await c.orgs.get(org) is None:
            _fail(f"organization {org} does not exist")

        def tx(conn: Any) -> LoginPolicy:
            current = policies.policy_for(conn, org)
            updated = LoginPolicy(
                max_password_attempts=current.max_password_attempts if max_password_attempts is None
                else max_password_attempts,
                max_otp_attempts=current.max_otp_attempts if max_otp_attempts is None else max_otp_attempts,
                force_mfa=current.force_mfa if force_mfa is None else force_mfa)
            policies.set_policy(conn, org or "", updated)
            return updated

        return await c.db.write(tx)

    _output([_policy_row(org or "", _run(settings, work))], _POLICY_COLUMNS, as_json)


@policy_app.command("reset")
def policy_reset(
    org: Annotated[str, typer.Option(help="Organization ID whose own policy is removed")],
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Remove an organization's own policy so the instance default applies again."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> bool:
        return await c.db.write(lambda conn: policies.delete_policy(conn, org))

    removed = _run(settings, work)
    typer.echo(f"Organization {org} now follows the instance default." if removed
               else f"Organization {org} had no policy of its own.")


# ---- machine keys, client secrets and signing keys --------------------------------------------------

keys_app = typer.Typer(help="Machine users' keys and secrets for OAuth, and the instance's signing keys.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    user_id: Annotated[str, typer.Option("--user", help="Machine user ID")],
    expires: Annotated[datetime | None, typer.Option(
        help="Expiry (ISO 8601, UTC if no zone) [default: never]")] = None,
    public_key: Annotated[Path | None, typer.Option(
        help="Register this PEM public key instead of generating a pair")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Create a key and print the key file (JSON) for Zitadel.with_private_key; it is shown only once.

    With --public-key nothing secret is printed: only the new key ID, as JSON.
    """
    settings = _settings(config, data_dir=data_dir, database=database)
    expires_us = from_datetime(expires.replace(tzinfo=expires.tzinfo or UTC)) if expires else None
    pem = public_key.read_bytes() if public_key else None

    async def work(c: Container) -> tuple[str, bytes]:
        key = await c.machine_keys.add_key(None, user_id, expires_us, pem)
        return key.key_id, key.key_content

    key_id, content = _run(settings, work)
    typer.echo(content.decode() if content else json.dumps({"keyId": key_id, "userId": user_id}))


@keys_app.command("list")
def keys_list(
    user_id: Annotated[str | None, typer.Option("--user", help="Only this user's keys")] = None,
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """List machine keys (never the private keys, which Tessera does not keep)."""
    from .users.keys import KeyFilter, KeySort

    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> list[dict[str, Any]]:
        _, keys = await c.machine_keys.list_keys(None, KeyFilter(user_ids=(user_id,) if user_id else ()),
                                                 Page(0, 1000, True), KeySort.CREATED_DATE)
        return [{"id": k.id, "user_id": k.user_id, "created": rfc3339(k.created_at),
                 "expires": rfc3339(k.expires_at)} for k in keys]

    _output(_run(settings, work), ("id", "user_id", "created", "expires"), as_json)


@keys_app.command("remove")
def keys_remove(
    user_id: Annotated[str, typer.Option("--user", help="Machine user ID")],
    key_id: Annotated[str, typer.Argument(help="Key ID")],
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Remove a key: it signs no more assertions and the tokens obtained with it stop working."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> None:
        await c.machine_keys.remove_key(None, user_id, key_id)

    _run(settings, work)
    typer.echo(f"Key {key_id} removed.")


@keys_app.command("secret")
def keys_secret(
    user_id: Annotated[str, typer.Option("--user", help="Machine user ID")],
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None,
) -> None:
    """Create (or replace) a machine user's client secret and print it once."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> str:
        return (await c.machine_keys.add_secret(None, user_id)).secret

    typer.echo(_run(settings, work))


@keys_app.command("rotate-signing")
def keys_rotate_signing(
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Add a new key for signing JWT access tokens; the old one stays published until its tokens expire."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> tuple[str, list[str]]:
        return await c.signing_keys.rotate()

    key_id, retired = _run(settings, work)
    if as_json:
        typer.echo(json.dumps({"kid": key_id, "retired": retired}))
    else:
        typer.echo(f"New signing key {key_id}." + (f" Retired: {', '.join(retired)}." if retired else ""))


@keys_app.command("signing")
def keys_signing(
    data_dir: DataDir = None, database: Database = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """List the published signing keys (as in /oauth/v2/keys) and which one signs."""
    settings = _settings(config, data_dir=data_dir, database=database)

    async def work(c: Container) -> list[dict[str, Any]]:
        return await c.signing_keys.describe()

    _output(_run(settings, work), ("kid", "state"), as_json)


def main() -> None:
    app()

