"""The demo hook the lead's `servicegroup demo` calls."""

from __future__ import annotations

from servicegroup.fed.demo import demo_lines


async def test_demo_shows_each_member_its_own_deployment_and_the_aggregate() -> None:
    lines = await demo_lines(within=30)
    assert lines[0].endswith("members: member-a (zone1), member-b (zone2)")
    assert lines[1:] == [
        "member-a got Deployments: deploymentgrid-demo-zone1 2/2",
        "member-b got Deployments: deploymentgrid-demo-zone2 3/3",
        "control deploymentgrid-demo distributed to member-a: zone1; member-b: zone2",
        "control deploymentgrid-demo status.states.zone1: 2/2 ready",
        "control deploymentgrid-demo status.states.zone2: 3/3 ready",
        "control deploymentgrid-demo Ready=True: 2/2 units ready in 2 member clusters",
        "control deploymentgrid-demo MembersReachable=True: 2 members reachable",
    ]
