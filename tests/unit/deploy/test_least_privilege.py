"""Every AWS operation the product calls is allowed by the shipped policy of the role that calls
it, and those policies allow nothing broader than a named action list.

The operations are collected statically from the product's AWS code: each module's boto3 clients
(``management("svc")``, ``in_account("svc", ...)``, ``client("svc")``) and every call of one of
those clients' operation methods or paginators, mapped to IAM actions through botocore's models.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from functools import cache
from pathlib import Path

import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[3]
IAM = ROOT / "deploy" / "iam"

#: Which principal runs each module's calls.
MANAGEMENT = "management-worker-policy.json"  # aws worker, management-account credentials
SYSTEMS = "systems-access-policy.json"  # FleetpatchSystemsAccess in each systems account
CUSTOMER = "customer-ec2-policy.json"  # the customer's cross-account role (EC2)
EC2_WORKER = "ec2-worker-policy.json"  # ec2 worker's own credentials
CALLERS: dict[str, tuple[str, ...]] = {
    "clouds/aws/links.py": (MANAGEMENT,),
    "clouds/aws/organizations.py": (MANAGEMENT,),
    "clouds/aws/sessions.py": (MANAGEMENT,),
    # Systems accounts, and EC2 customers' own accounts (patched through the customer's role).
    "clouds/aws/ssm_agents.py": (SYSTEMS, CUSTOMER),
    "clouds/aws/ssm_commands.py": (SYSTEMS, CUSTOMER),
    "clouds/aws/ssm_config.py": (SYSTEMS, CUSTOMER),
    "clouds/aws/patch_train.py": (SYSTEMS, CUSTOMER),
    "clouds/aws/remote_access.py": (SYSTEMS,),  # Session Manager: tier and session preferences
}
#: Modules whose services are called by different principals: service -> policies.
BY_SERVICE: dict[str, dict[str, tuple[str, ...]]] = {
    # The ec2 worker assumes the customer's role (own credentials), then reads and tags instances.
    "clouds/ec2/instances.py": {"sts": (EC2_WORKER,), "ec2": (CUSTOMER,)},
    # ComplianceSync reads SSM in every systems account, and EC2 tags only where EC2 nodes live:
    # a customer's own AWS account, through its role.
    "clouds/aws/ssm_estate.py": {"ssm": (SYSTEMS, CUSTOMER), "ec2": (CUSTOMER,)},
    # Creating FleetpatchSystemsAccess: IAM through OrganizationAccountAccessRole (the one use of
    # the administrator role, so no policy of ours to check), the caller's identity from STS.
    "clouds/aws/systems_role.py": {"sts": (MANAGEMENT,), "iam": ()},
    # `fleetpatch session start`: an operator's own credentials and operator role, not a worker's.
    "clouds/aws/session_start.py": {"sts": (), "ssm": ()},
}
#: Operations whose IAM action has another name, and actions an operation needs besides its own.
ACTION_OF = {"s3:HeadBucket": "s3:ListBucket", "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock"}
ALSO_NEEDS = {"ssm:CreateActivation": ("iam:PassRole",)}


@cache
def _methods(service: str) -> dict[str, str]:
    """python method name -> operation name, from botocore's service model."""
    model = botocore.session.get_session().get_service_model(service)
    return {botocore.xform_name(op): op for op in model.operation_names}


def _service_literals(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr in ("management", "in_account", "client", "_client") and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    names.add(node.args[0].value)
    return names


def operations_in(path: Path) -> dict[str, set[str]]:
    """service -> operations called in one module (operation methods called or passed, paginator
    names and aws_call labels)."""
    tree = ast.parse(path.read_text())
    services = _service_literals(tree)
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        # A method called (ssm.send_command(...)) or handed on (self._call(..., ssm.send_command)),
        # or named in a string: a paginator ("describe_instance_information", wherever it is
        # passed) or the action label of aws_call("ssm:GetInventory").
        if isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            service, _, action = node.value.partition(":")
            if action and service in services and action in _methods(service).values():
                found.setdefault(service, set()).add(action)
                continue
            names = [node.value]
        else:
            continue
        for service in services:
            for name in names:
                operation = _methods(service).get(name)
                if operation:
                    found.setdefault(service, set()).add(operation)
    # The shared cache of assumed roles (clouds/aws/sessions.py) calls AssumeRole with the STS
    # client a module hands it: the module's own principal makes that call.
    uses_cache = any(isinstance(n, ast.Name) and n.id == "AssumedRoles" for n in ast.walk(tree))
    if uses_cache and "sts" in services:
        found.setdefault("sts", set()).add("AssumeRole")
    return found


def required() -> dict[str, set[str]]:
    """policy file -> IAM actions the product needs it to allow."""
    needs: dict[str, set[str]] = {}

    def add(policies: tuple[str, ...], service: str, operation: str) -> None:
        action = ACTION_OF.get(f"{service}:{operation}", f"{service}:{operation}")
        for policy in policies:
            needs.setdefault(policy, set()).update({action, *ALSO_NEEDS.get(action, ())})

    for module, policies in CALLERS.items():
        for service, operations in operations_in(ROOT / module).items():
            for operation in operations:
                add(policies, service, operation)
    for module, services in BY_SERVICE.items():
        for service, operations in operations_in(ROOT / module).items():
            for operation in operations:
                add(services[service], service, operation)
    return needs


def test_every_aws_module_is_accounted_for() -> None:
    """A new module that calls AWS must say which role runs it."""
    known = set(CALLERS) | set(BY_SERVICE)
    for path in [*(ROOT / "clouds/aws").glob("*.py"), *(ROOT / "clouds/ec2").glob("*.py")]:
        module = str(path.relative_to(ROOT))
        if operations_in(path):
            assert module in known, f"{module} calls AWS: add it to CALLERS or BY_SERVICE"


def _statements(policy: str, directory: Path = IAM) -> list[dict]:
    statements = json.loads((directory / policy).read_text())["Statement"]
    return [statements] if isinstance(statements, dict) else statements


def allowed(policy: str, action: str, directory: Path = IAM) -> bool:
    """Allowed by some Allow statement (resource and condition scoping are the policy's own)."""
    for statement in _statements(policy, directory):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions):
            return True
    return False


def test_the_scan_finds_the_calls_it_should() -> None:
    """Guards the scanner itself: a few calls known to be in the code are found."""
    needs = required()
    assert {"organizations:CreateAccount", "sts:AssumeRole", "ssm:GetParametersByPath"} <= needs[MANAGEMENT]
    assert {"ssm:SendCommand", "ssm:CreateActivation", "iam:PassRole", "s3:ListBucket", "iam:CreateRole"} <= needs[SYSTEMS]
    assert {"ec2:DescribeInstances", "ec2:CreateTags"} <= needs[CUSTOMER]
    assert needs[EC2_WORKER] == {"sts:AssumeRole"}


@pytest.mark.parametrize("policy", [MANAGEMENT, SYSTEMS, CUSTOMER, EC2_WORKER])
def test_every_called_operation_is_allowed(policy: str) -> None:
    missing = sorted(a for a in required()[policy] if not allowed(policy, a))
    assert missing == [], f"{policy} lacks {missing}"


@pytest.mark.parametrize("policy", [MANAGEMENT, SYSTEMS, CUSTOMER, EC2_WORKER])
def test_policies_name_their_actions(policy: str) -> None:
    """No service-wide or global wildcard, and nothing allowed that the product never calls."""
    needs = required()[policy]
    for statement in _statements(policy):
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert "*" not in action, f"{policy}: {action}"
            assert action in needs or action.startswith("kms:"), f"{policy} allows {action}, never called"


def test_a_missing_action_is_caught(tmp_path: Path) -> None:
    policy = json.loads((IAM / SYSTEMS).read_text())
    for statement in policy["Statement"]:
        if isinstance(statement["Action"], list):
            statement["Action"] = [a for a in statement["Action"] if a != "ssm:SendCommand"]
    (tmp_path / SYSTEMS).write_text(json.dumps(policy))
    assert allowed(SYSTEMS, "ssm:SendCommand") and not allowed(SYSTEMS, "ssm:SendCommand", tmp_path)


def test_the_systems_role_the_product_creates_is_the_shipped_one() -> None:
    from clouds.aws import systems_role

    shipped = json.loads((IAM / SYSTEMS).read_text())
    assert systems_role.permissions_policy() == shipped
    assert systems_role.ROLE_NAME == "FleetpatchSystemsAccess"
