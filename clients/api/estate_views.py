"""How estate read results look on the wire: JSON documents, CSV rows, the audit chain's links.

Shared by the read API and the dashboard, so both show the same numbers under the same names.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from fastapi.encoders import jsonable_encoder

from contracts.patching import HELD_NO_EARLY
from estate.results import ComplianceReport, Counters, CveExposure, InstanceDetail, InstanceRow, TrendPoint

#: Columns of an instance row, in the order of the JSON object and the CSV header.
INSTANCE_COLUMNS: tuple[str, ...] = (
    "managed_instance_id", "instance_key", "provider", "customer", "cloud_account", "systems_account",
    "patch_group", "os", "os_version", "agent_version", "ping", "last_seen", "compliance", "installed",
    "installed_other", "installed_pending_reboot", "missing", "failed", "not_applicable", "critical_missing",
    "last_operation", "last_operation_end", "baseline_id", "departed_at",
)


def counters(value: Counters) -> dict[str, int]:
    return asdict(value)


def compliance_doc(report: ComplianceReport) -> dict[str, Any]:
    groups = [{**group.keys, **counters(group.counters)} for group in report.groups]
    return jsonable_encoder(
        {"as_of": report.as_of, "group_by": report.group_by, "groups": groups, "totals": counters(report.totals),
         "held": held_doc(report.held_os)}
    )


def held_doc(held_os: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Per customer, the OSes its later rings hold for want of an early instance, with the note
    the window summary and ``fleetpatch links list`` give."""
    return [{"customer": customer, "os": oses, "note": f"{', '.join(oses)}: {HELD_NO_EARLY}"}
            for customer, oses in sorted(held_os.items()) if oses]


def instance_doc(row: InstanceRow) -> dict[str, Any]:
    doc = {
        "managed_instance_id": row.managed_instance_id, "instance_key": row.instance_key,
        "provider": row.provider, "customer": row.customer, "cloud_account": row.cloud_account,
        "systems_account": row.systems_account, "patch_group": row.patch_group, "os": row.os_name,
        "os_version": row.os_version, "agent_version": row.agent_version, "ping": row.ping_status,
        "last_seen": row.last_seen, "compliance": row.compliance, "installed": row.installed,
        "installed_other": row.installed_other, "installed_pending_reboot": row.installed_pending_reboot,
        "missing": row.missing, "failed": row.failed, "not_applicable": row.not_applicable,
        "critical_missing": row.critical_missing, "last_operation": row.operation,
        "last_operation_end": row.operation_end, "baseline_id": row.baseline_id, "departed_at": row.departed_at,
    }
    return jsonable_encoder(doc)


def instances_csv(rows: list[InstanceRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=INSTANCE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        doc = instance_doc(row)
        writer.writerow({k: _csv_cell(v) for k, v in doc.items()})
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    """No cell starts a spreadsheet formula (a name from a VM label must not run in Excel)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def temporal_ui_link(ui_url: str | None, namespace: str, workflow_id: str | None, run_id: str | None) -> str | None:
    """The enrollment's page in the Temporal UI, when the UI's address is configured."""
    if not ui_url or not workflow_id:
        return None
    path = f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    return f"{path}/{quote(run_id, safe='')}/history" if run_id else path


def detail_doc(detail: InstanceDetail, ui_url: str | None, namespace: str) -> dict[str, Any]:
    enrollment = detail.enrollment
    doc = {
        **instance_doc(detail.instance),
        "evidence": asdict(detail.evidence),
        "enrollment": {
            "workflow_id": enrollment.workflow_id, "run_id": enrollment.run_id,
            "temporal_ui": temporal_ui_link(ui_url, namespace, enrollment.workflow_id, enrollment.run_id),
        },
        "baseline": asdict(detail.baseline) if detail.baseline else None,
        "patches": [asdict(p) for p in detail.patches],
        "inventory": [asdict(s) for s in detail.inventory],
        "windows": [asdict(w) for w in detail.windows],
    }
    return jsonable_encoder(doc)


def cve_doc(exposure: CveExposure) -> dict[str, Any]:
    return jsonable_encoder(asdict(exposure))


def trend_doc(points: list[TrendPoint], days: int, customer: str | None) -> dict[str, Any]:
    rows = [{"at": p.at, "customer": p.customer, **counters(p.counters)} for p in points]
    return jsonable_encoder({"days": days, "customer": customer, "points": rows})
