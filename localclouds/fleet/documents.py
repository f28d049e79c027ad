"""The Command documents a simulated agent executes, against its VM's synthetic software.

- ``AWS-RunPatchBaseline``: Operation Scan|Install, SnapshotId, InstallOverrideList (https:// or
  s3://), RebootOption RebootIfNeeded|NoReboot; reports AWS:PatchSummary (PutInventory) and the
  Patch compliance items (PutComplianceItems), which DescribeInstancePatchStates and
  DescribeInstancePatches then show.
- ``AWS-RunPatchBaselineWithHooks``: the documented steps - scan; stop there for Scan, or when
  nothing is missing and no reboot is due; pre-install hook; install without reboot; post-install
  hook; reboot and report if RebootIfNeeded and a reboot is due; on-exit hook. A failing hook
  skips to the on-exit hook and fails the command. Hooks are Command documents read with
  GetDocument (``AWS-Noop`` does nothing).
- ``AWS-RunShellScript`` / ``AWS-RunPowerShellScript`` and hook documents: an echo-level shell -
  ``echo``/``Write-Output`` lines print, ``exit N`` ends with N, anything else is only logged.
- ``AWS-GatherSoftwareInventory``: an AWS:Application inventory of the VM's packages (Windows:
  its programs, and its KBs as AWS:WindowsUpdate).

The run takes the VM's command duration (sleeping is where a cancellation lands) and fails with
the VM's failure rate: a failing Install fails one of its patches (reported FAILED).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localclouds.fleet import catalogue, patching
from localclouds.fleet.catalogue import Installed
from localclouds.fleet.override import OverrideListError, parse

Blocking = Callable[..., Awaitable[Any]]
NOOP = "AWS-Noop"


@dataclass
class PluginResult:
    name: str
    status: str  # Success | Failed
    code: int
    output: str


@dataclass
class DocumentResult:
    plugins: list[PluginResult]

    @property
    def status(self) -> str:
        return "Failed" if any(p.status == "Failed" for p in self.plugins) else "Success"


@dataclass
class Execution:
    """What one command run needs; ``session`` is an agent session (see agent_client)."""

    session: Any
    software: Installed
    platform_type: str  # Linux | Windows
    duration: float
    fail: bool
    blocking: Blocking  # runs a blocking call off the event loop
    fetch_override: Callable[[str], Awaitable[bytes]]
    save: Callable[[], None]
    installed_times: dict[str, datetime] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class DocumentError(Exception):
    """The document cannot run (unknown document, bad parameter): the command fails."""


def _param(parameters: dict[str, Any], name: str, default: str = "") -> str:
    value = parameters.get(name)
    if isinstance(value, list):
        value = value[0] if value else default
    return str(value) if value not in (None, "") else default


async def run(name: str, parameters: dict[str, Any], ex: Execution) -> DocumentResult:
    if name == "AWS-RunPatchBaseline":
        return DocumentResult(await _patch_baseline(parameters, ex))
    if name == "AWS-RunPatchBaselineWithHooks":
        return DocumentResult(await _with_hooks(parameters, ex))
    if name in ("AWS-RunShellScript", "AWS-RunPowerShellScript"):
        await asyncio.sleep(ex.duration)
        commands = parameters.get("commands") or []
        code, output = shell(commands if isinstance(commands, list) else [str(commands)])
        if ex.fail and code == 0:
            code, output = 1, output + "simulated failure\n"
        step = "aws:runPowerShellScript" if name.endswith("PowerShellScript") else "aws:runShellScript"
        return DocumentResult([PluginResult(step, "Success" if code == 0 else "Failed", code, output)])
    if name == "AWS-GatherSoftwareInventory":
        await asyncio.sleep(ex.duration)
        items = _inventory(ex, parameters)
        if items:
            await ex.blocking(ex.session.put_inventory, items)
        return DocumentResult([PluginResult("aws:softwareInventory", "Success", 0, "Inventory collected: "
                                            + (", ".join(i["TypeName"] for i in items) or "nothing enabled"))])
    raise DocumentError(f"the simulated agent does not run document {name}")


def shell(lines: list[str]) -> tuple[int, str]:
    """An echo-level shell: (exit code, output)."""
    output = []
    for raw in "\n".join(str(line) for line in lines).splitlines():
        line = raw.strip()
        if line.startswith(("echo ", "Write-Output ")) or line in ("echo", "Write-Output"):
            output.append(line.split(" ", 1)[1].strip("'\"") if " " in line else "")
        elif line.startswith("exit"):
            parts = line.split()
            code = int(parts[1]) if len(parts) > 1 and parts[1].lstrip("-").isdigit() else 0
            return code, "".join(f"{o}\n" for o in output)
    return 0, "".join(f"{o}\n" for o in output)


# --- patch baseline ----------------------------------------------------------------------------

@dataclass
class _Snapshot:
    snapshot_id: str
    baseline: dict[str, Any]
    patch_group: str


async def _snapshot(parameters: dict[str, Any], ex: Execution) -> _Snapshot:
    snapshot_id = _param(parameters, "SnapshotId") or str(uuid.uuid4())
    answer = await ex.blocking(ex.session.get_deployable_patch_snapshot, snapshot_id)
    document = answer["Snapshot"]
    return _Snapshot(answer["SnapshotId"], document["patchBaseline"], document.get("patchGroup", ""))


async def _report(ex: Execution, snap: _Snapshot, operation: str, started: datetime,
                  reboot_option: str, override_url: str, no_reboot_install: datetime | None
                  ) -> list[patching.PatchItem]:
    cat = catalogue.build(ex.software.os, ex.clock())
    items = patching.evaluate(cat, ex.software, snap.baseline, ex.clock())
    ended = ex.clock()
    fields: dict[str, Any] = {
        "PatchGroup": snap.patch_group, "BaselineId": snap.baseline.get("BaselineId", ""),
        "SnapshotId": snap.snapshot_id, "Operation": operation, "RebootOption": reboot_option,
        "OperationStartTime": _iso(started), "OperationEndTime": _iso(ended),
        "OwnerInformation": "", **patching.counts(items),
    }
    if override_url:
        fields["InstallOverrideList"] = override_url
    if no_reboot_install is not None:
        fields["LastNoRebootInstallOperationTime"] = _iso(no_reboot_install)
    from localclouds.aws.agent_client import patch_summary_item

    await ex.blocking(ex.session.put_inventory, [patch_summary_item(ended, **fields)])
    await ex.blocking(ex.session.put_compliance_items, "Patch",
                      patching.compliance_items(items, ex.installed_times), ended)
    return items


async def _install(ex: Execution, snap: _Snapshot, reboot_option: str, override_url: str
                   ) -> tuple[patching.InstallOutcome, str]:
    overrides = None
    if override_url:
        try:
            overrides = parse(await ex.fetch_override(override_url))
        except OverrideListError as err:
            raise DocumentError(str(err)) from None
    now = ex.clock()
    cat = catalogue.build(ex.software.os, now)
    targets = patching.install_targets(cat, ex.software, snap.baseline, now, overrides)
    failing = {targets[0].package} if ex.fail and targets else set()
    outcome = patching.apply_install(ex.software, targets, failing, reboot_option)
    for patch in outcome.installed:
        ex.installed_times[patch.package] = now
    ex.save()
    lines = [f"Installed {p.title}" for p in outcome.installed]
    lines += [f"Failed to install {p.title}" for p in outcome.failed]
    if outcome.rebooted:
        lines.append("Rebooting to complete the installation")
    elif ex.software.pending_reboot:
        lines.append(f"{len(ex.software.pending_reboot)} patch(es) installed, pending reboot")
    return outcome, "\n".join(lines) or "No applicable patches to install"


def _summary(items: list[patching.PatchItem]) -> str:
    numbers = patching.counts(items)
    return ", ".join(f"{k}: {v}" for k, v in numbers.items() if v)


def _step(ex: Execution) -> str:
    return "PatchWindows" if ex.platform_type == "Windows" else "PatchLinux"


async def _patch_baseline(parameters: dict[str, Any], ex: Execution) -> list[PluginResult]:
    operation = _param(parameters, "Operation", "Scan")
    reboot_option = _param(parameters, "RebootOption", "RebootIfNeeded")
    override_url = _param(parameters, "InstallOverrideList")
    started = ex.clock()
    snap = await _snapshot(parameters, ex)
    await asyncio.sleep(ex.duration)
    if operation == "Scan":
        if ex.fail:
            return [PluginResult(_step(ex), "Failed", 1, "Scan failed (simulated failure)")]
        items = await _report(ex, snap, "Scan", started, reboot_option, "", None)
        return [PluginResult(_step(ex), "Success", 0, f"Scan complete. {_summary(items)}")]
    try:
        outcome, text = await _install(ex, snap, reboot_option, override_url)
    except DocumentError as err:
        return [PluginResult(_step(ex), "Failed", 1, str(err))]
    no_reboot = started if reboot_option == "NoReboot" and outcome.installed else None
    items = await _report(ex, snap, "Install", started, reboot_option, override_url, no_reboot)
    failed = bool(outcome.failed)
    return [PluginResult(_step(ex), "Failed" if failed else "Success", 1 if failed else 0,
                         f"{text}\nInstall complete. {_summary(items)}")]


async def _hook(name: str, ex: Execution, step: str) -> PluginResult:
    if not name or name == NOOP:
        return PluginResult(step, "Success", 0, f"{NOOP}: nothing to run")
    try:
        document = await ex.blocking(ex.session.ssm.get_document, Name=name)
    except Exception as err:  # noqa: BLE001 - any GetDocument failure fails the hook
        return PluginResult(step, "Failed", 1, f"cannot read hook document {name}: {err}")
    code, output = shell(_commands(document.get("Content", "")))
    return PluginResult(step, "Success" if code == 0 else "Failed", code, output)


def _commands(content: str) -> list[str]:
    import json

    try:
        document = json.loads(content)
    except ValueError:
        import yaml

        document = yaml.safe_load(content)
    lines: list[str] = []
    for step in (document or {}).get("mainSteps") or []:
        run_command = (step.get("inputs") or {}).get("runCommand") or []
        lines += run_command if isinstance(run_command, list) else [str(run_command)]
    for config in ((document or {}).get("runtimeConfig") or {}).values():
        for prop in config.get("properties") or []:
            run_command = prop.get("runCommand") or []
            lines += run_command if isinstance(run_command, list) else [str(run_command)]
    return lines


async def _with_hooks(parameters: dict[str, Any], ex: Execution) -> list[PluginResult]:
    operation = _param(parameters, "Operation", "Scan")
    reboot_option = _param(parameters, "RebootOption", "RebootIfNeeded")
    started = ex.clock()
    snap = await _snapshot(parameters, ex)
    await asyncio.sleep(ex.duration)
    items = await _report(ex, snap, "Scan", started, reboot_option, "", None)
    plugins = [PluginResult("ScanForPatches", "Success", 0, f"Scan complete. {_summary(items)}")]
    if operation == "Scan":
        return plugins
    missing = any(i.state in ("MISSING", "FAILED") for i in items)
    pending = bool(ex.software.pending_reboot)
    if missing or (pending and reboot_option == "RebootIfNeeded"):
        plugins.append(await _hook(_param(parameters, "PreInstallHookDocName", NOOP), ex,
                                   "PreInstallHook"))
        if plugins[-1].status == "Success":
            outcome, text = await _install(ex, snap, "NoReboot", "")
            items = await _report(ex, snap, "Install", started, "NoReboot", "",
                                  started if outcome.installed else None)
            plugins.append(PluginResult("InstallPatches", "Failed" if outcome.failed else "Success",
                                        1 if outcome.failed else 0, text))
        if plugins[-1].status == "Success":
            plugins.append(await _hook(_param(parameters, "PostInstallHookDocName", NOOP), ex,
                                       "PostInstallHook"))
        if plugins[-1].status == "Success" and reboot_option == "RebootIfNeeded" and (
            ex.software.pending_reboot
        ):
            patching.apply_install(ex.software, [], set(), "RebootIfNeeded")
            ex.save()
            items = await _report(ex, snap, "Install", started, reboot_option, "", None)
            plugins.append(PluginResult("RebootAndReport", "Success", 0,
                                        f"Rebooted. {_summary(items)}"))
    plugins.append(await _hook(_param(parameters, "OnExitHookDocName", NOOP), ex, "OnExitHook"))
    return plugins


#: What every Windows VM has installed besides its updates (AWS:Application).
WINDOWS_PROGRAMS = (("Amazon SSM Agent", "3.3.1142.0", "Amazon Web Services"),
                    ("Microsoft Edge", "126.0.2592.113", "Microsoft Corporation"),
                    ("Microsoft .NET Framework 4.8.1", "4.8.09032", "Microsoft Corporation"))


def _inventory(ex: Execution, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """AWS-GatherSoftwareInventory's items: AWS:Application (packages, or Windows programs) and,
    on Windows, AWS:WindowsUpdate (installed KBs), unless their parameter says Disabled."""
    now = ex.clock()
    captured = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    items = []
    if _param(parameters, "applications", "Enabled") != "Disabled":
        items.append({"TypeName": "AWS:Application", "SchemaVersion": "1.1", "CaptureTime": captured,
                      "Content": _applications(ex, now)})
    if ex.software.os.value == "windows" and _param(parameters, "windowsUpdates", "Enabled") != "Disabled":
        items.append({"TypeName": "AWS:WindowsUpdate", "SchemaVersion": "1.0", "CaptureTime": captured,
                      "Content": [{"HotFixId": kb, "Description": "Security Update", "InstalledBy": "NT AUTHORITY\\SYSTEM",
                                   "InstalledTime": _iso(ex.installed_times.get(kb, now))}
                                  for kb in sorted(ex.software.kbs)]})
    return items


def _applications(ex: Execution, now: datetime) -> list[dict[str, Any]]:
    if ex.software.os.value == "windows":
        return [{"Name": name, "Version": version, "Publisher": publisher, "ApplicationType": "",
                 "Architecture": "x86_64"} for name, version, publisher in WINDOWS_PROGRAMS]
    cat = catalogue.build(ex.software.os, now)
    content = [{"Name": "amazon-ssm-agent", "Version": "3.3.1142.0", "Architecture": "x86_64",
                "Publisher": "Amazon.com, Inc.", "ApplicationType": "admin"}]
    for package, version in sorted(ex.software.packages.items()):
        patch = cat.find(package, version)
        content.append({"Name": package.rsplit(".", 1)[0], "Version": version,
                        "Architecture": patch.arch if patch else "",
                        "Publisher": "", "ApplicationType": patch.section if patch else ""})
    return content


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
