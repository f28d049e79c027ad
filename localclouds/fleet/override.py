"""``InstallOverrideList``: the list of patches an Install operation installs instead of the
baseline's approvals (pure parsing and matching; fetching is the agent's job).

The list is a YAML file (JSON is YAML too) at an ``https://`` URL or an ``s3://bucket/key``
path-style URL::

    patches:
      - id: 'kernel.x86_64'                 # Linux: name.arch, wildcards allowed ('glibc*')
        title: '*4.18.0-513.18.1.el8_9'     # optional version filter, wildcards allowed
      - id: 'KB5040437'                     # Windows: KB id; other fields are informational

Semantics, as Patch Manager documents them: with a list, Install installs the listed patches
that apply to the node (newer than what is installed) whatever the baseline's rules say; Scan
ignores the list, and compliance is still judged against the baseline. Extra fields are ignored.
A Linux title is matched against ``name.arch:epoch:version-release`` (APT:
``name.arch:version``) and against its version part alone (``epoch:version-release`` and
``version-release``), so both spellings of the documentation's samples work.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import yaml

from localclouds.fleet.catalogue import Patch

MAX_BYTES = 1024 * 1024


class OverrideListError(ValueError):
    """The list cannot be used; the Install operation fails with this reason."""


@dataclass(frozen=True)
class OverrideEntry:
    id: str
    title: str | None = None

    def matches(self, patch: Patch) -> bool:
        if patch.is_windows:
            return self.id.upper() == patch.package.upper()
        if not fnmatch.fnmatchcase(patch.package, self.id):
            return False
        if self.title is None:
            return True
        return any(fnmatch.fnmatchcase(candidate, self.title) for candidate in _titles(patch))


def _titles(patch: Patch) -> list[str]:
    if patch.release:
        return [patch.title, f"{patch.epoch}:{patch.full_version}", patch.full_version]
    return [patch.title, patch.full_version]


def parse(content: bytes) -> list[OverrideEntry]:
    """The entries of an override list, or OverrideListError saying what is wrong."""
    if len(content) > MAX_BYTES:
        raise OverrideListError("the install override list is larger than 1 MiB")
    try:
        document = yaml.safe_load(content.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise OverrideListError(f"the install override list is not valid YAML: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("patches"), list):
        raise OverrideListError("the install override list needs a top-level 'patches' list")
    entries = []
    for index, item in enumerate(document["patches"]):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise OverrideListError(f"patch {index} of the install override list has no id")
        title = item.get("title")
        if title is not None and not isinstance(title, str):
            raise OverrideListError(f"patch {index} of the install override list has a bad title")
        entries.append(OverrideEntry(item["id"], title or None))
    return entries


def selects(entries: list[OverrideEntry], patch: Patch) -> bool:
    return any(entry.matches(patch) for entry in entries)


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise OverrideListError(f"{url!r} is not an s3://bucket/key URL")
    return bucket, key
