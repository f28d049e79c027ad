"""The systems accounts of one customer, on every cloud: what a customer-wide ring spans.

A customer's linked cloud accounts come from the link allow-list (Parameter Store); each one's
systems account is the account vended for it (found in Organizations by email, then tags), or,
for AWS links, the customer's own account behind the link's role. Accounts not vended yet are
left out: they have no ring to wait for.
"""

from __future__ import annotations

from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations, account_email
from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings
from contracts.enrollment import AccountRef, TenantLink


def owned_account_id(role_arn: str) -> str | None:
    """The account id of ``arn:aws:iam::<id>:role/...``; None when it is not such an ARN."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not (len(parts[4]) == 12 and parts[4].isdigit()):
        return None
    return parts[4]


class CustomerAccounts:
    def __init__(self, sessions: AwsSessions, settings: AwsSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._links = LinkStore(sessions, settings.links_parameter_prefix)
        self._org = Organizations(sessions)

    def of(self, customer: str, region: str) -> list[tuple[AccountRef, str]]:
        """(systems account, "provider/cloud account (systems account)") of every link of
        ``customer`` whose systems account exists, sorted by systems account."""
        found: dict[str, tuple[AccountRef, str]] = {}
        for link in self._links.list():
            if link.customer != customer:
                continue
            ref = self._systems_account(link, region)
            if ref is not None:
                found[ref.account_id] = (ref, f"{link.provider.value}/{link.cloud_account} ({ref.account_id})")
        return [found[k] for k in sorted(found)]

    def _systems_account(self, link: TenantLink, region: str) -> AccountRef | None:
        if link.role_arn:
            account_id = owned_account_id(link.role_arn)
            return AccountRef(account_id, link.role_arn, link.external_id, region) if account_id else None
        email = account_email(link.provider, link.cloud_account, prefix=self._settings.account_name_prefix,
                              domain=self._settings.account_email_domain)
        account_id = self._org.find(email, link.provider, link.cloud_account)
        return AccountRef(account_id, self._sessions.role_arn_for(account_id), None, region) if account_id else None
