"""IAM the local AWS enforces in the accounts its Organizations vended (moto enforces none).

In a vended (member) account, as in real AWS:
- ``sts:AssumeRole`` needs the role to exist, and its trust policy to name the caller's account
  (or a principal in it) as an AWS principal;
- a request signed with credentials of an assumed role other than the account's administrator
  role (``OrganizationAccountAccessRole``) must be allowed by an action of the role's policies
  (inline and attached); an unconditional Deny wins. Resources and conditions are not evaluated:
  the check is on action names, which is what fleetpatch's least-privilege role is about.

Accounts outside the organization (the customers' own EC2 accounts of the simulated fleet) keep
moto's behaviour: any role can be assumed. S3 (REST) requests are not checked.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any
from urllib.parse import unquote

ADMIN_ROLE = "OrganizationAccountAccessRole"
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$")


class Denied(Exception):
    pass


def _member_accounts() -> set[str]:
    from moto.organizations.models import organizations_backends

    members: set[str] = set()
    for account_id, backends in list(organizations_backends.items()):
        backend = backends["aws"]
        if backend.org is not None and backend.org.master_account_id == account_id:
            members |= {a.id for a in backend.accounts if a.id != account_id}
    return members


def _iam(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def _role(role_arn: str) -> Any | None:
    match = _ROLE_ARN.match(role_arn or "")
    if match is None:
        return None
    for role in _iam(match.group(1)).roles.values():
        if role.name == match.group(2):
            return role
    return None


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(unquote(document)) if document.lstrip().startswith("%") else json.loads(document)
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _trusts(role: Any, caller_account: str) -> bool:
    for statement in _statements(role.assume_role_policy_document):
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in _listed(statement.get("Action")):
            continue
        principal = statement.get("Principal")
        aws = _listed(principal.get("AWS")) if isinstance(principal, dict) else _listed(principal)
        if any(p == "*" or p == caller_account or f":{caller_account}:" in p for p in aws):
            return True
    return False


def check_assume_role(caller_account: str, role_arn: str) -> None:
    """Refuse AssumeRole into a vended account's role that is missing or does not trust the caller."""
    match = _ROLE_ARN.match(role_arn or "")
    if match is None or match.group(1) not in _member_accounts():
        return
    role = _role(role_arn)
    if role is None or (match.group(2) != ADMIN_ROLE and not _trusts(role, caller_account)):
        raise Denied(f"not authorized to perform: sts:AssumeRole on resource: {role_arn}")


def _documents(role: Any) -> list[Any]:
    documents: list[Any] = list(role.policies.values())
    for policy in role.managed_policies.values():
        default = next((v for v in policy.versions if v.is_default), None)
        if default is not None:
            documents.append(default.document)
    return documents


def check_action(access_key: str | None, service: str | None, action: str | None) -> None:
    """Refuse an action that the assumed role behind ``access_key`` is not allowed."""
    if not (access_key and service and action) or service == "s3":
        return
    from moto.iam.models import get_account_id_from

    account_id = get_account_id_from(access_key)
    key = _iam(account_id).access_keys.get(access_key)
    role_arn = getattr(key, "role_arn", None)
    if not role_arn or role_arn.rsplit("/", 1)[-1] == ADMIN_ROLE or account_id not in _member_accounts():
        return
    role = _role(role_arn)
    wanted = f"{service}:{action}"
    allowed = False
    for document in _documents(role) if role is not None else []:
        for statement in _statements(document):
            matches = any(fnmatch.fnmatchcase(wanted.lower(), a.lower()) for a in _listed(statement.get("Action")))
            if matches and statement.get("Effect") == "Deny" and not statement.get("Condition"):
                raise Denied(f"explicit deny of {wanted} for {role_arn}")
            allowed = allowed or (matches and statement.get("Effect") == "Allow")
    if not allowed:
        raise Denied(f"{role_arn} is not authorized to perform: {wanted}")
