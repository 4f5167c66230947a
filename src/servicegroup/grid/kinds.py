"""The kind table: everything that differs between DeploymentGrid, StatefulSetGrid and ServiceGrid.

One code path serves all three grids; the differences are data here, not copies of the reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from servicegroup.api.grid_crds import SERVICE_SUFFIX
from servicegroup.api.labels import GRID_GROUP, GRID_VERSION
from servicegroup.kube.resources import DEPLOYMENTS, SERVICES, STATEFULSETS, Resource, crd_resource


@dataclass(frozen=True)
class GridKind:
    """One grid kind and the child kind it stamps out."""

    grid: Resource
    child: Resource
    controller_name: str  # work queue, metrics and Event source (SuperEdge's names)
    per_unit: bool  # one child per unit (DG/SSG) or exactly one (SG)

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

DEPLOYMENT_GRID: Final = GridKind(DEPLOYMENT_GRIDS, DEPLOYMENTS, "deployment-grid-controller", per_unit=True)
STATEFULSET_GRID: Final = GridKind(
    STATEFULSET_GRIDS, STATEFULSETS, "statefulset-grid-controller", per_unit=True
)
SERVICE_GRID: Final = GridKind(SERVICE_GRIDS, SERVICES, "service-grid-controller", per_unit=False)

KINDS: Final = (DEPLOYMENT_GRID, STATEFULSET_GRID, SERVICE_GRID)
BY_KIND: Final = {k.kind: k for k in KINDS}
