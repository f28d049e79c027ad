"""The local GCP cloud's instances: kept in memory, persisted to ``DIR/gcp/instances.json``.

Instance names are unique across all projects here (real GCE only requires uniqueness within a
zone) because the metadata server finds a VM by name alone: ``/vm/{name}/computeMetadata/...``.
Errors carry the HTTP status and the GCE ``reason`` that the REST layer answers with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localclouds.gcp.keys import write_json_atomic

STATE_FILE = "instances.json"

_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_MAX_LABELS = 64


class StoreError(Exception):
    """A refusal with the HTTP status and GCE error reason to answer."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class Project:
    project_id: str
    number: int
    service_account_id: str

    @property
    def service_account_email(self) -> str:
        return f"{self.number}-compute@developer.gserviceaccount.com"


@dataclass
class Instance:
    project: str
    zone: str
    name: str
    id: str
    created: float  # unix seconds
    status: str = "RUNNING"
    machine_type: str = "e2-medium"
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def label_fingerprint(self) -> str:
        return fingerprint(self.labels)


def fingerprint(labels: dict[str, str]) -> str:
    """A stable digest of the labels: changes whenever they change (GCE's optimistic lock)."""
    digest = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).digest()
    return base64.b64encode(digest[:8]).decode("ascii")


def validate_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or len(labels) > _MAX_LABELS:
        raise StoreError(400, "invalid", "Invalid value for field 'labels'")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
            raise StoreError(400, "invalid", f"Invalid value for field 'labels': key {key!r}")
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            raise StoreError(400, "invalid", f"Invalid value for field 'labels.{key}'")
    return dict(labels)


class InstanceStore:
    """Thread-safe (the REST layer serves from a thread pool); every change is saved at once."""

    def __init__(self, gcp_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = gcp_dir / STATE_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._projects: dict[str, Project] = {}
        self._instances: dict[str, Instance] = {}  # by name
        if self._path.exists():
            document = json.loads(self._path.read_text(encoding="utf-8"))
            for item in document.get("projects", []):
                self._projects[item["project_id"]] = Project(**item)
            for item in document.get("instances", []):
                self._instances[item["name"]] = Instance(**item)

    def _save(self) -> None:
        write_json_atomic(
            self._path,
            {
                "projects": [asdict(p) for p in self._projects.values()],
                "instances": [asdict(i) for i in self._instances.values()],
            },
        )

    def _project(self, project_id: str) -> Project:
        if project_id not in self._projects:
            self._projects[project_id] = Project(
                project_id=project_id,
                number=secrets.randbelow(9 * 10**11) + 10**11,  # 12 digits, like Google's
                service_account_id=str(secrets.randbelow(9 * 10**20) + 10**20),  # 21 digits
            )
        return self._projects[project_id]

    def project(self, project_id: str) -> Project | None:
        with self._lock:
            return self._projects.get(project_id)

    def insert(self, project: str, zone: str, body: dict[str, Any]) -> Instance:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise StoreError(400, "invalid", f"Invalid value for field 'resource.name': {name!r}")
        labels = validate_labels(body.get("labels"))
        machine_type = str(body.get("machineType") or "e2-medium").rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            if name in self._instances:
                raise StoreError(
                    409,
                    "alreadyExists",
                    f"The resource 'projects/{project}/zones/{zone}/instances/{name}' "
                    "already exists",
                )
            self._project(project)
            instance = Instance(
                project=project,
                zone=zone,
                name=name,
                id=str(secrets.randbelow(2**63 - 10**18) + 10**18),  # 19 digits, uint64
                created=self._clock(),
                machine_type=machine_type,
                description=str(body.get("description") or ""),
                labels=labels,
            )
            self._instances[name] = instance
            self._save()
            return instance

    def _find(self, project: str, zone: str, name_or_id: str) -> Instance:
        instance = self._instances.get(name_or_id)
        if instance is None:
            instance = next((i for i in self._instances.values() if i.id == name_or_id), None)
        if instance is None or instance.project != project or instance.zone != zone:
            raise StoreError(
                404,
                "notFound",
                f"The resource 'projects/{project}/zones/{zone}/instances/{name_or_id}' "
                "was not found",
            )
        return instance

    def get(self, project: str, zone: str, name_or_id: str) -> Instance:
        with self._lock:
            return self._find(project, zone, name_or_id)

    def list(self, project: str, zone: str) -> list[Instance]:
        with self._lock:
            return [i for i in self._instances.values() if (i.project, i.zone) == (project, zone)]

    def in_project(self, project: str) -> list[Instance]:
        """Every instance of ``project`` over all zones (``instances.aggregatedList``)."""
        with self._lock:
            return [i for i in self._instances.values() if i.project == project]

    def delete(self, project: str, zone: str, name_or_id: str) -> Instance:
        with self._lock:
            instance = self._find(project, zone, name_or_id)
            del self._instances[instance.name]
            self._save()
            return instance

    def set_labels(
        self, project: str, zone: str, name_or_id: str, labels: Any, label_fingerprint: Any
    ) -> Instance:
        new_labels = validate_labels(labels)
        with self._lock:
            instance = self._find(project, zone, name_or_id)
            if label_fingerprint != instance.label_fingerprint:
                raise StoreError(
                    412,
                    "conditionNotMet",
                    "Labels fingerprint either invalid or resource labels have changed",
                )
            instance.labels = new_labels
            self._save()
            return instance

    def by_name(self, name: str) -> tuple[Instance, Project] | None:
        """The VM behind ``/vm/{name}`` (names are unique across projects here)."""
        with self._lock:
            instance = self._instances.get(name)
            if instance is None:
                return None
            return instance, self._project(instance.project)
