"""vCenter activities (vmware worker): verify fleetpatch-issued tokens against the live VM, issue
and rotate them (the token schedule), and retire a token once it has enrolled its VM."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from clouds.vmware import factory
from clouds.vmware.token import peek_vcenter_token
from config.settings import VmwareSettings
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import (
    ActivityName,
    IssueTokensInput,
    IssueTokensResult,
    RetireTokenInput,
    VerifyIdentityInput,
    VmMetadata,
    VmMetadataInput,
)


class VmwareActivities:
    def __init__(self, settings: VmwareSettings) -> None:
        self._settings = settings

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        token = inp.identity.get("token")
        if not isinstance(token, str):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "a vmware identity is {\"token\", \"bios_uuid\"}")
        if not inp.vcenter_public_keys:
            raise IdentityRefused(ErrorType.IDENTITY_KEY_UNKNOWN, "the vCenter's link holds no token keys")
        vcenter_id, _ = peek_vcenter_token(token)
        return factory.verify_vmware_identity(
            inp.identity,
            vcenter_id=vcenter_id,
            public_keys=inp.vcenter_public_keys,
            settings=self._settings,
            now=datetime.now(UTC),
            scope=inp.vcenter_scope,
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        return factory.read_vm_metadata(inp.identity, self._settings)

    @activity.defn(name=ActivityName.ISSUE_VCENTER_TOKENS)
    def issue_vcenter_tokens(self, inp: IssueTokensInput) -> IssueTokensResult:
        """Tokens for the link's labelled VMs that lack a valid one (all of them with ``force``)."""
        settings = self._settings
        with factory.client_for(settings, inp.vcenter_id) as client:
            issued = client.issue_tokens(
                inp.vcenter_id,
                inp.customer,
                self._signing_key(inp.vcenter_id),
                label_name=inp.patching_label,
                now=datetime.now(UTC),
                ttl=settings.token_ttl,
                scope=inp.scope,
                rotate_before=None if inp.force else settings.token_rotate_before,
                public_keys=inp.public_keys,
            )
        activity.logger.info("vCenter tokens issued", extra={"vcenter": inp.vcenter_id, "issued": len(issued)})
        return IssueTokensResult(issued=[uuid for _, uuid in issued])

    @activity.defn(name=ActivityName.RETIRE_VCENTER_TOKEN)
    def retire_vcenter_token(self, inp: RetireTokenInput) -> bool:
        """The token enrolled its VM: remember its id (a replay is refused), then replace it."""
        with factory.client_for(self._settings, inp.vcenter_id) as client:
            return client.retire_token(
                inp.instance_uuid,
                inp.jti,
                vcenter_id=inp.vcenter_id,
                customer=inp.customer,
                private_pem=self._signing_key(inp.vcenter_id),
                now=datetime.now(UTC),
                ttl=self._settings.token_ttl,
            )

    def _signing_key(self, vcenter_id: str) -> str:
        configured = self._settings.vcenters.get(vcenter_id)
        if configured is None or configured.signing_key_file is None:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"vCenter {vcenter_id!r} has no signing_key_file")
        try:
            return configured.signing_key_file.read_text()
        except OSError as err:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"vCenter {vcenter_id!r}: signing key unreadable") from err

    def all(self) -> list:
        return [self.verify_identity, self.read_vm_metadata, self.issue_vcenter_tokens, self.retire_vcenter_token]
