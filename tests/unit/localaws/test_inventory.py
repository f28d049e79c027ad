"""Inventory: agents report AWS:Application, SSM keeps AWS:InstanceInformation from their pings;
GetInventory and ListInventoryEntries serve both, with filters and pages."""

from __future__ import annotations

import pytest

APPS = [{"Name": f"pkg-{n:02d}", "Version": f"1.{n}", "Publisher": "fleetpatch",
         "ApplicationType": "System"} for n in range(12)]


def _applications(content):
    return {"TypeName": "AWS:Application", "SchemaVersion": "1.1",
            "CaptureTime": "2024-07-01T10:00:00Z", "Content": content}


def test_list_inventory_entries(local_aws, ssm):
    agent = local_aws.agent(ssm, platform=("Debian GNU/Linux", "Linux", "12"))
    empty = ssm.list_inventory_entries(InstanceId=agent.instance_id, TypeName="AWS:Application")
    assert empty["Entries"] == []
    agent.put_inventory([_applications(APPS)])

    first = ssm.list_inventory_entries(InstanceId=agent.instance_id, TypeName="AWS:Application",
                                       MaxResults=5)
    assert first["SchemaVersion"] == "1.1" and first["CaptureTime"] == "2024-07-01T10:00:00Z"
    entries, token = list(first["Entries"]), first.get("NextToken")
    while token:
        page = ssm.list_inventory_entries(InstanceId=agent.instance_id,
                                          TypeName="AWS:Application", MaxResults=5,
                                          NextToken=token)
        entries += page["Entries"]
        token = page.get("NextToken")
    assert entries == APPS  # every page, in order, nothing twice

    only = ssm.list_inventory_entries(
        InstanceId=agent.instance_id, TypeName="AWS:Application",
        Filters=[{"Key": "Name", "Values": ["pkg-1"], "Type": "BeginWith"}])["Entries"]
    assert [e["Name"] for e in only] == ["pkg-10", "pkg-11"]

    info = ssm.list_inventory_entries(InstanceId=agent.instance_id,
                                      TypeName="AWS:InstanceInformation")["Entries"]
    assert info == [{"AgentType": "amazon-ssm-agent", "AgentVersion": "3.3.1142.0",
                     "ComputerName": agent.instance_id, "InstanceId": agent.instance_id,
                     "InstanceStatus": "Active", "IpAddress": "192.0.2.10",
                     "PlatformName": "Debian GNU/Linux", "PlatformType": "Linux",
                     "PlatformVersion": "12", "ResourceType": "ManagedInstance"}]
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.list_inventory_entries(InstanceId="mi-00000000000000000", TypeName="AWS:Application")
    with pytest.raises(ssm.exceptions.InvalidTypeNameException):
        ssm.list_inventory_entries(InstanceId=agent.instance_id, TypeName="Application")


def test_get_inventory(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=3)
    ubuntu = local_aws.agent(ssm, activation)
    windows = local_aws.agent(ssm, activation, platform=("Microsoft Windows Server 2022 Datacenter",
                                                         "Windows", "10.0.20348"))
    silent = local_aws.agent(ssm, activation)
    ubuntu.put_inventory([_applications(APPS[:3])])
    windows.put_inventory([_applications([{"Name": "Microsoft Edge", "Version": "126.0"}])])

    everything = ssm.get_inventory()["Entities"]
    assert {e["Id"] for e in everything} == {ubuntu.instance_id, windows.instance_id,
                                             silent.instance_id}
    by_id = {e["Id"]: e["Data"] for e in everything}
    assert set(by_id[silent.instance_id]) == {"AWS:InstanceInformation"}
    assert by_id[ubuntu.instance_id]["AWS:Application"]["Content"] == APPS[:3]
    assert by_id[ubuntu.instance_id]["AWS:Application"]["ContentHash"]

    apps = ssm.get_inventory(ResultAttributes=[{"TypeName": "AWS:Application"}])["Entities"]
    assert {e["Id"] for e in apps} == {ubuntu.instance_id, windows.instance_id}
    assert all(set(e["Data"]) == {"AWS:Application"} for e in apps)

    windows_only = ssm.get_inventory(Filters=[{"Key": "AWS:InstanceInformation.PlatformType",
                                               "Values": ["Windows"], "Type": "Equal"}])
    assert [e["Id"] for e in windows_only["Entities"]] == [windows.instance_id]
    edge = ssm.get_inventory(Filters=[{"Key": "AWS:Application.Name", "Values": ["Microsoft"],
                                       "Type": "BeginWith"}])["Entities"]
    assert [e["Id"] for e in edge] == [windows.instance_id]

    named = ssm.get_inventory(Filters=[{"Key": "AWS:InstanceInformation.InstanceId", "Type": "Equal",
                                        "Values": [windows.instance_id, silent.instance_id, "mi-00000000000000000"]}],
                              ResultAttributes=[{"TypeName": "AWS:Application"}])["Entities"]
    assert [e["Id"] for e in named] == [windows.instance_id]  # silent has no AWS:Application
    both = ssm.get_inventory(Filters=[
        {"Key": "AWS:InstanceInformation.InstanceId", "Values": [ubuntu.instance_id, windows.instance_id]},
        {"Key": "AWS:InstanceInformation.PlatformType", "Values": ["Linux"]}])["Entities"]
    assert [e["Id"] for e in both] == [ubuntu.instance_id]  # every filter still applies

    paged, token = [], None
    while True:
        page = ssm.get_inventory(MaxResults=1, **({"NextToken": token} if token else {}))
        paged += [e["Id"] for e in page["Entities"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(paged) == sorted(by_id)

    ssm.deregister_managed_instance(InstanceId=silent.instance_id)
    assert silent.instance_id not in {e["Id"] for e in ssm.get_inventory()["Entities"]}
    with pytest.raises(ssm.exceptions.InvalidFilterKey):
        ssm.get_inventory(Filters=[{"Key": "PlatformType", "Values": ["Linux"]}])
