"""AWS control-plane activities (aws worker): links, account vending, SSM configuration, agents.

Synchronous (boto3) methods: the worker runs them on a thread pool. Each is one idempotent step.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations, account_email, account_name
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_agents import SsmAgents
from clouds.aws.ssm_config import SsmConfigurator
from clouds.aws.systems_role import SystemsRole
from config.settings import AwsSettings
from contracts.enrollment import (
    AccountLookup,
    Activation,
    ActivationCheck,
    ActivationRequest,
    CreateAccountRequest,
    CreateAccountStatus,
    CreateAccountSubmitted,
    DeleteActivationInput,
    DeregisterInput,
    FoundAccount,
    GetLinkResult,
    LinkKey,
    ListLinksResult,
    ManagedInstanceQuery,
    ManagedInstanceResult,
    SsmConfigurationInput,
    SsmConfigurationResult,
    TagAccountInput,
    TagManagedInstanceInput,
    TenantLink,
)
from contracts.enrollment_setup import NewInstanceActivation
from contracts.errors import ErrorType, FleetpatchError, NotReady
from contracts.sealing import seal
from contracts.models import ActivityName


class AwsActivities:
    def __init__(self, settings: AwsSettings, sessions: AwsSessions | None = None, sealing_key: str | None = None) -> None:
        self._settings = settings
        self._sealing_key = sealing_key
        self._sessions = sessions or AwsSessions(settings)
        self._links = LinkStore(self._sessions, settings.links_parameter_prefix)
        self._org = Organizations(self._sessions)
        self._ssm_config = SsmConfigurator(self._sessions, settings.agent_update_schedule)
        self._agents = SsmAgents(self._sessions)
        self._systems_role = SystemsRole(self._sessions, settings.systems_role_name)

    def all(self) -> list:
        return [
            self.get_link,
            self.put_link,
            self.delete_link,
            self.list_links,
            self.find_systems_account,
            self.submit_create_account,
            self.poll_create_account,
            self.tag_systems_account,
            self.apply_ssm_configuration,
            self.create_activation,
            self.activate_new_instance,
            self.delete_activation,
            self.check_activation,
            self.find_managed_instance,
            self.await_managed_instance,
            self.tag_managed_instance,
            self.deregister_managed_instance,
        ]

    # --- links -----------------------------------------------------------------------------

    @activity.defn(name=ActivityName.GET_LINK)
    def get_link(self, key: LinkKey) -> GetLinkResult:
        return GetLinkResult(link=self._links.get(key.provider, key.cloud_account))

    @activity.defn(name=ActivityName.PUT_LINK)
    def put_link(self, link: TenantLink) -> None:
        self._links.put(link)

    @activity.defn(name=ActivityName.DELETE_LINK)
    def delete_link(self, key: LinkKey) -> bool:
        return self._links.delete(key.provider, key.cloud_account)

    @activity.defn(name=ActivityName.LIST_LINKS)
    def list_links(self) -> ListLinksResult:
        return ListLinksResult(links=self._links.list())

    # --- account vending -------------------------------------------------------------------

    @activity.defn(name=ActivityName.FIND_SYSTEMS_ACCOUNT)
    def find_systems_account(self, lookup: AccountLookup) -> FoundAccount:
        email = account_email(
            lookup.provider, lookup.cloud_account,
            prefix=self._settings.account_name_prefix, domain=self._settings.account_email_domain,
        )
        name = account_name(lookup.customer, lookup.provider, lookup.cloud_account, prefix=self._settings.account_name_prefix)
        account_id = self._org.find(email, lookup.provider, lookup.cloud_account)
        # An adopted account gets (or keeps) the least-privilege role before anything uses it.
        return FoundAccount(
            email=email,
            name=name,
            account_id=account_id,
            role_arn=self._systems_role.ensure(account_id) if account_id else None,
        )

    @activity.defn(name=ActivityName.SUBMIT_CREATE_ACCOUNT)
    def submit_create_account(self, request: CreateAccountRequest) -> CreateAccountSubmitted:
        return CreateAccountSubmitted(request_id=self._org.submit(request.name, request.email, request.tags))

    @activity.defn(name=ActivityName.POLL_CREATE_ACCOUNT)
    def poll_create_account(self, submitted: CreateAccountSubmitted) -> CreateAccountStatus:
        """Benign "not ready" until the request settles; FAILED is returned for the workflow to judge."""
        status = self._org.status(submitted.request_id)
        if status.state == "IN_PROGRESS":
            raise NotReady(ErrorType.ACCOUNT_NOT_READY, f"account request {submitted.request_id} in progress")
        if status.account_id:
            # Right after vending: the one use of the account's administrator role.
            status.role_arn = self._systems_role.ensure(status.account_id)
        return status

    @activity.defn(name=ActivityName.TAG_SYSTEMS_ACCOUNT)
    def tag_systems_account(self, inp: TagAccountInput) -> None:
        self._org.tag(inp.account_id, inp.tags)

    # --- SSM configuration -----------------------------------------------------------------

    @activity.defn(name=ActivityName.APPLY_SSM_CONFIGURATION)
    def apply_ssm_configuration(self, inp: SsmConfigurationInput) -> SsmConfigurationResult:
        return self._ssm_config.apply(inp.account, inp.version)

    # --- agents ----------------------------------------------------------------------------

    @activity.defn(name=ActivityName.CREATE_ACTIVATION)
    def create_activation(self, request: ActivationRequest) -> Activation:
        """The activation, its code sealed: it travels through history to the API unreadable."""
        if not self._sealing_key:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, "no sealing key: set FLEETPATCH_SEALING_KEY")
        activation = self._agents.create_activation(
            request.account,
            service_role=request.service_role,
            default_instance_name=request.default_instance_name,
            idempotency_key=request.idempotency_key,
            tags=request.tags,
            expiry=timedelta(seconds=request.expiry_seconds),
        )
        activation.code = seal(self._sealing_key, activation.code)
        return activation

    @activity.defn(name=ActivityName.ACTIVATE_NEW_INSTANCE)
    def activate_new_instance(self, request: NewInstanceActivation) -> Activation:
        """Trust on first use, then the activation: an instance key that is already a managed
        instance is refused (an operator must allow re-enrollment). A retry after the activation
        was created finds no managed instance yet (nobody holds its code) and adopts it."""
        existing = self._agents.find(request.activation.account, instance_key=request.instance_key)
        if existing is not None:
            raise FleetpatchError(
                ErrorType.ALREADY_ENROLLED,
                f"{request.instance_key} is already managed instance {existing.instance_id}; "
                "an operator must allow re-enrollment",
            )
        return self.create_activation(request.activation)

    @activity.defn(name=ActivityName.DELETE_ACTIVATION)
    def delete_activation(self, inp: DeleteActivationInput) -> None:
        self._agents.delete_activation(inp.account, inp.activation_id)

    @activity.defn(name=ActivityName.CHECK_ACTIVATION)
    def check_activation(self, inp: DeleteActivationInput) -> ActivationCheck:
        return self._agents.check_activation(inp.account, inp.activation_id)

    @activity.defn(name=ActivityName.FIND_MANAGED_INSTANCE)
    def find_managed_instance(self, query: ManagedInstanceQuery) -> ManagedInstanceResult:
        return ManagedInstanceResult(
            instance=self._agents.find(
                query.account,
                activation_id=query.activation_id,
                instance_key=query.instance_key,
                instance_id=query.instance_id,
            )
        )

    @activity.defn(name=ActivityName.AWAIT_MANAGED_INSTANCE)
    def await_managed_instance(self, query: ManagedInstanceQuery) -> ManagedInstanceResult:
        """Retried on a flat backoff until the instance registered and pings Online."""
        found = self._agents.find(
            query.account,
            activation_id=query.activation_id,
            instance_key=query.instance_key,
            instance_id=query.instance_id,
        )
        if found is None or found.ping_status != "Online":
            state = "not registered" if found is None else f"registered, ping {found.ping_status}"
            raise NotReady(ErrorType.AGENT_NOT_READY, f"managed instance {state} yet")
        return ManagedInstanceResult(instance=found)

    @activity.defn(name=ActivityName.DEREGISTER_MANAGED_INSTANCE)
    def deregister_managed_instance(self, inp: DeregisterInput) -> None:
        self._agents.deregister(inp.account, inp.instance_id)

    @activity.defn(name=ActivityName.TAG_MANAGED_INSTANCE)
    def tag_managed_instance(self, inp: TagManagedInstanceInput) -> None:
        self._agents.tag(inp.account, inp.instance_id, inp.tags)
