"""AWS-managed IAM policies in the local AWS.

Real IAM has every AWS-managed policy (``arn:aws:iam::aws:policy/...``) in every account, so
AttachRolePolicy with, say, AmazonSSMManagedInstanceCore just works. moto can load all ~1,300
of them, but it parses and builds them again for every account, which makes each new account
cost about a second. The local AWS loads the few that fleetpatch and SSM agents use, parsed
once and shared.
"""

from __future__ import annotations

import functools
import json
from typing import Any

USED = (
    "AmazonSSMManagedInstanceCore",
    "AmazonSSMPatchAssociation",
    "AmazonSSMAutomationRole",
    "AmazonEC2RoleforSSM",
    "AdministratorAccess",
    "ReadOnlyAccess",
)


@functools.cache
def _data() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    everything = json.loads(aws_managed_policies_data)
    return {name: everything[name] for name in USED if name in everything}


def install() -> None:
    """Make every moto IAM backend created from now on hold the AWS-managed policies in USED."""
    from moto.iam import models

    def init_aws_policies(self: Any) -> list[Any]:
        return [
            models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
            for name, data in _data().items()
        ]

    models.IAMBackend._init_aws_policies = init_aws_policies  # type: ignore[method-assign]
