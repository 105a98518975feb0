"""First start on an empty database: the instance, its default organization and an admin.

The admin is a machine user holding IAM_OWNER; its personal access token is written once to a
file with mode 0600. Later starts find the instance row and change nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, insert, select

from .auth.permissions import INSTANCE_SCOPE
from .clock import now_us
from .config import Settings
from .container import Container
from .ids import new_id
from .store.schema import instances, login_policies
from .users.service import NewMachine


@dataclass(frozen=True)
class InitResult:
    created: bool
    instance_id: str
    admin_user_id: str
    pat_path: Path | None


class BootstrapError(RuntimeError):
    """The instance cannot be created as configured."""


def _instance(conn: Connection) -> tuple[str, str] | None:
    row = conn.execute(select(instances.c.id, instances.c.admin_user_id)).first()
    return (row.id, row.admin_user_id) if row else None


async def ensure_instance(container: Container) -> InitResult:
    """Create the instance on an empty database; report what exists otherwise."""
    settings: Settings = container.settings
    existing = await container.db.read(_instance)
    if existing is not None:
        return InitResult(False, existing[0], existing[1], settings.admin_pat_path)

    pat_path = settings.admin_pat_path
    if pat_path is not None:
        # Claim the file before writing anything, so that an unusable path fails the first start
        # with nothing created (a retry with a good path then works) instead of losing the token.
        _reserve_secret_file(pat_path)
    try:
        return await _create_instance(container, pat_path)
    except BaseException:
        if pat_path is not None:
            pat_path.unlink(missing_ok=True)
        raise


async def _create_instance(container: Container, pat_path: Path | None) -> InitResult:
    settings = container.settings
    instance_id = new_id()
    org_id, _, _ = await container.orgs.add(None, settings.org_name, domain=settings.org_domain)
    admin_id, _ = await container.users.add_machine(
        None,
        NewMachine(org_id=org_id, username=settings.admin_username, name="Tessera administrator",
                   description="Created on first start; holds IAM_OWNER"),
        role=(INSTANCE_SCOPE, "IAM_OWNER"),
    )

    def record(conn: Connection) -> None:
        conn.execute(insert(instances).values(
            id=instance_id, name=settings.instance_name, default_org_id=org_id,
            admin_user_id=admin_id, created_at=now_us()))
        conn.execute(insert(login_policies).values(scope="", max_password_attempts=0, max_otp_attempts=0,
                                                  force_mfa=False))

    await container.db.write(record)
    container.instance_id = instance_id
    pat = await container.users.add_pat(None, admin_id, None)
    if pat_path is not None:
        with pat_path.open("w") as handle:  # the reserved file, still mode 0600
            handle.write(pat.token + "\n")
    return InitResult(True, instance_id, admin_id, pat_path)


def _reserve_secret_file(path: Path) -> None:
    if path.exists():
        raise BootstrapError(f"{path} already exists but the database is empty; move it away or choose another path")
    try:
        write_secret_file(path, "")
    except OSError as exc:
        raise BootstrapError(f"cannot create {path}: {exc.strerror or exc}") from None


def write_secret_file(path: Path, content: str) -> None:
    """Create ``path`` with mode 0600; never overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
