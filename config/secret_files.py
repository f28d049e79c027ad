"""Secrets handed as files: ``FLEETPATCH_X_FILE=/run/secrets/x`` sets ``FLEETPATCH_X`` to the file's
content (trailing newline stripped), for any setting, nested ones included
(``FLEETPATCH_API__ADMIN_TOKEN_FILE``, ``FLEETPATCH_DATABASE__URL_FILE``).

A variable set directly wins over its ``_FILE`` form. Settings whose own name ends in ``_file``
(``FLEETPATCH_GCP__JWKS_FILE``) keep their meaning. A named file that cannot be read stops the
process at start with a message naming the variable, never the content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

PREFIX = "FLEETPATCH_"
SUFFIX = "_FILE"


class SecretFileUnreadable(ValueError):
    pass


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _field_path(model: type[BaseModel], parts: list[str]) -> bool:
    """Whether ``parts`` (lower-case names) lead to a field of ``model``."""
    field = model.model_fields.get(parts[0])
    if field is None:
        return False
    if len(parts) == 1:
        return True
    inner = _model_of(field.annotation)
    return inner is not None and _field_path(inner, parts[1:])


def _nest(target: dict[str, Any], parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


class SecretFileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self._environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, path in self._environ.items():
            upper = name.upper()
            if not (upper.startswith(PREFIX) and upper.endswith(SUFFIX)) or upper[: -len(SUFFIX)] in self._environ:
                continue
            full = upper[len(PREFIX):].lower().split("__")
            target = upper[len(PREFIX): -len(SUFFIX)].lower().split("__")
            if _field_path(self.settings_cls, full) or not _field_path(self.settings_cls, target):
                continue
            try:
                value = Path(path).read_text().rstrip("\r\n")
            except OSError as err:
                raise SecretFileUnreadable(f"{name}: cannot read the file it names ({err.strerror})") from None
            _nest(found, target, value)
        return found
