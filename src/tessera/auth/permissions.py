"""Roles and the permissions they grant.

A membership grants a role either on the whole instance (scope ``""``) or on one organization.
An instance-level grant satisfies a check for any organization.
"""

from __future__ import annotations

INSTANCE_SCOPE = ""

SESSION_READ = "session.read"
SESSION_WRITE = "session.write"
SESSION_DELETE = "session.delete"
USER_READ = "user.read"
USER_WRITE = "user.write"
USER_DELETE = "user.delete"
USER_CREDENTIAL_WRITE = "user.credential.write"
ORG_READ = "org.read"
ORG_CREATE = "org.create"
POLICY_READ = "policy.read"
POLICY_WRITE = "policy.write"

_SESSION = {SESSION_READ, SESSION_WRITE, SESSION_DELETE}
_USER = {USER_READ, USER_WRITE, USER_DELETE, USER_CREDENTIAL_WRITE}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "IAM_OWNER": frozenset(_SESSION | _USER | {ORG_READ, ORG_CREATE, POLICY_READ, POLICY_WRITE}),
    "IAM_LOGIN_CLIENT": frozenset(_SESSION | {USER_READ, POLICY_READ}),
    "IAM_USER_MANAGER": frozenset(_USER | {ORG_READ, SESSION_READ, SESSION_DELETE, POLICY_READ}),
    "ORG_OWNER": frozenset(_SESSION | _USER | {ORG_READ, POLICY_READ, POLICY_WRITE}),
    "ORG_USER_MANAGER": frozenset(_USER | {ORG_READ, SESSION_READ, SESSION_DELETE, POLICY_READ}),
}

INSTANCE_ROLES = frozenset({"IAM_OWNER", "IAM_LOGIN_CLIENT", "IAM_USER_MANAGER"})
ORG_ROLES = frozenset({"ORG_OWNER", "ORG_USER_MANAGER"})
