"""Tenant links in the management account's Parameter Store: nothing enrolls unless linked.

One parameter per customer cloud account, ``{prefix}/{provider}/{cloud account}``, holding the
link as JSON; a further link of a shared vCenter, ``vc01:acme``, is ``{prefix}/vmware/vc01/acme``
(``contracts.vcenter_links``). Parameter Store is the system of record; fleetpatch keeps no database.
Two vmware links of one vCenter may not have overlapping scopes: ``put`` refuses such a link.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions
from contracts import vcenter_links
from contracts.enrollment import TenantLink
from contracts.errors import ErrorType, FleetpatchError
from contracts.providers import PatchGroup, Provider

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def parameter_name(prefix: str, provider: Provider, cloud_account: str) -> str:
    if Provider(provider) is Provider.VMWARE and vcenter_links.is_link_id(cloud_account):
        return f"{prefix}/vmware/{vcenter_links.parameter_path(cloud_account)}"
    if not cloud_account or not set(cloud_account) <= _SAFE:
        raise ValueError(f"cloud account {cloud_account!r} may hold only letters, digits, '_', '.', '-'")
    return f"{prefix}/{Provider(provider).value}/{cloud_account}"


def check_vmware_scopes(link: TenantLink, links: list[TenantLink]) -> None:
    """Refuse (``LinkScopesOverlap``) a vmware link that would share VMs with another link of its
    vCenter, and (``ConfigurationInvalid``) a named link of a shared vCenter without a scope."""
    if link.provider is not Provider.VMWARE:
        return
    if vcenter_links.name_of(link.cloud_account) and not link.vcenter_scope:
        raise FleetpatchError(ErrorType.CONFIGURATION_INVALID,
                              f"vmware link {link.cloud_account} needs a folder or resource pool (vcenter_scope)")
    others = [(l.cloud_account, l.vcenter_scope) for l in links if l.provider is Provider.VMWARE]
    clash = vcenter_links.conflicting(link.cloud_account, link.vcenter_scope, others)
    if clash:
        scope = link.vcenter_scope or "the whole vCenter"
        raise FleetpatchError(ErrorType.LINK_SCOPES_OVERLAP,
                              f"vmware link {link.cloud_account} ({scope}) overlaps link {clash} of the same vCenter")


def link_from_json(text: str) -> TenantLink:
    raw: dict[str, Any] = json.loads(text)
    return TenantLink(
        provider=Provider(raw["provider"]),
        cloud_account=raw["cloud_account"],
        customer=raw["customer"],
        default_patch_group=PatchGroup(raw.get("default_patch_group", PatchGroup.ON_TIME)),
        time_zone=raw.get("time_zone", "UTC"),
        role_arn=raw.get("role_arn"),
        external_id=raw.get("external_id"),
        vcenter_public_keys=list(raw.get("vcenter_public_keys", [])),
        windows=dict(raw.get("windows", {})),
        vcenter_scope=raw.get("vcenter_scope"),
        remote_access=bool(raw.get("remote_access", False)),
    )


def link_to_json(link: TenantLink) -> str:
    doc = asdict(link)
    doc["provider"] = link.provider.value
    doc["default_patch_group"] = PatchGroup(link.default_patch_group).value
    return json.dumps(doc, sort_keys=True)


class LinkStore:
    def __init__(self, sessions: AwsSessions, prefix: str) -> None:
        self._sessions = sessions
        self._prefix = prefix.rstrip("/")

    def _ssm(self) -> Any:
        return self._sessions.management("ssm")

    def get(self, provider: Provider, cloud_account: str) -> TenantLink | None:
        try:
            name = parameter_name(self._prefix, provider, cloud_account)
        except ValueError:
            return None  # such an account cannot have been linked
        try:
            with aws_call("ssm:GetParameter"):
                value = self._ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as err:
            if error_code(err) == "ParameterNotFound":
                return None
            raise
        return link_from_json(value)

    def put(self, link: TenantLink) -> None:
        """Store a link (again: change it). A vmware link is checked against its vCenter's other
        links before and after it is written: Parameter Store has no transaction, so a link that a
        concurrent change made overlap is taken back (its previous version restored) and refused;
        two racing overlapping links are then both refused, never both kept."""
        if link.provider is not Provider.VMWARE:
            self._write(link)
            return
        check_vmware_scopes(link, self.list())
        previous = self.get(link.provider, link.cloud_account)
        self._write(link)
        try:
            check_vmware_scopes(link, self.list())
        except FleetpatchError:
            if previous is None:
                self.delete(link.provider, link.cloud_account)
            else:
                self._write(previous)
            raise

    def _write(self, link: TenantLink) -> None:
        name = parameter_name(self._prefix, link.provider, link.cloud_account)
        with aws_call("ssm:PutParameter"):
            self._ssm().put_parameter(
                Name=name,
                Value=link_to_json(link),
                Type="SecureString",  # an AWS link holds the customer role's ExternalId
                Overwrite=True,
                Description=f"fleetpatch link: {link.customer}",
            )

    def delete(self, provider: Provider, cloud_account: str) -> bool:
        name = parameter_name(self._prefix, provider, cloud_account)
        try:
            with aws_call("ssm:DeleteParameter"):
                self._ssm().delete_parameter(Name=name)
        except ClientError as err:
            if error_code(err) == "ParameterNotFound":
                return False
            raise
        return True

    def list(self) -> list[TenantLink]:
        links: list[TenantLink] = []
        with aws_call("ssm:GetParametersByPath"):
            paginator = self._ssm().get_paginator("get_parameters_by_path")
            for page in paginator.paginate(Path=self._prefix, Recursive=True, WithDecryption=True):
                links += [link_from_json(p["Value"]) for p in page["Parameters"]]
        return sorted(links, key=lambda l: (l.customer, l.provider.value, l.cloud_account))
