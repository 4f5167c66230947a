"""The kind table: everything that differs between the grid kinds.

One code path serves every grid; the differences are data here, not copies of the reconcile.
DeploymentGrid, StatefulSetGrid and ServiceGrid are SuperEdge's (`KINDS`, also distributed by
fed); ConfigMapGrid and SecretGrid are ours (`CONFIG_KINDS`, docs/site-config.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from servicegroup.api.grid_crds import SERVICE_SUFFIX
from servicegroup.api.labels import (
    GRID_GROUP,
    GRID_SELECTOR,
    GRID_VERSION,
    OWN_GROUP,
    OWN_VERSION,
    SITE_GROUP,
    SITE_VERSION,
)
from servicegroup.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
    crd_resource,
)

Role = Literal["workload", "service", "config"]


@dataclass(frozen=True)
class GridKind:
    """One grid kind and the child kind it stamps out."""

    grid: Resource
    child: Resource
    controller_name: str  # work queue, metrics and Event source (SuperEdge's names)
    per_unit: bool  # one child per unit (DG/SSG/config grids) or exactly one (SG)
    role: Role = "workload"
    # Label selector of the child informer: config children are watched by our label only, so the
    # controller does not cache every ConfigMap and Secret of the cluster.
    child_selector: str | None = None

    @property
    def kind(self) -> str:
        """`DeploymentGrid` etc."""
        return self.grid.kind

    def child_name(self, grid_name: str, unit: str) -> str:
        """`<grid>-<unit>`, or `<grid>-svc` for the ServiceGrid's one Service."""
        return f"{grid_name}-{unit}" if self.per_unit else f"{grid_name}{SERVICE_SUFFIX}"


DEPLOYMENT_GRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "deploymentgrids", "DeploymentGrid")
STATEFULSET_GRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "statefulsetgrids", "StatefulSetGrid")
SERVICE_GRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "servicegrids", "ServiceGrid")
CONFIGMAP_GRIDS: Final = crd_resource(OWN_GROUP, OWN_VERSION, "configmapgrids", "ConfigMapGrid")
SECRET_GRIDS: Final = crd_resource(OWN_GROUP, OWN_VERSION, "secretgrids", "SecretGrid")
NODEUNITS: Final = crd_resource(SITE_GROUP, SITE_VERSION, "nodeunits", "NodeUnit", namespaced=False)

DEPLOYMENT_GRID: Final = GridKind(DEPLOYMENT_GRIDS, DEPLOYMENTS, "deployment-grid-controller", per_unit=True)
STATEFULSET_GRID: Final = GridKind(
    STATEFULSET_GRIDS, STATEFULSETS, "statefulset-grid-controller", per_unit=True
)
SERVICE_GRID: Final = GridKind(
    SERVICE_GRIDS, SERVICES, "service-grid-controller", per_unit=False, role="service"
)
CONFIGMAP_GRID: Final = GridKind(
    CONFIGMAP_GRIDS,
    CONFIGMAPS,
    "configmap-grid-controller",
    per_unit=True,
    role="config",
    child_selector=GRID_SELECTOR,
)
SECRET_GRID: Final = GridKind(
    SECRET_GRIDS,
    SECRETS,
    "secret-grid-controller",
    per_unit=True,
    role="config",
    child_selector=GRID_SELECTOR,
)

KINDS: Final = (DEPLOYMENT_GRID, STATEFULSET_GRID, SERVICE_GRID)  # SuperEdge's (fed distributes these)
CONFIG_KINDS: Final = (CONFIGMAP_GRID, SECRET_GRID)
ALL_KINDS: Final = (*KINDS, *CONFIG_KINDS)
BY_KIND: Final = {k.kind: k for k in ALL_KINDS}
