"""`servicegroup manager --controllers secretgrid`: the SecretGrid controller, opt-in.

It must list, watch and write Secrets cluster-wide (RBAC cannot narrow that to SecretGrid
children), and no other controller touches Secrets: so a manager without it holds no Secret
rights at all (deploy/rbac/secretgrid adds them). With it, workload grids also resolve SecretGrid
references to the per-unit Secrets (grid/controller.py).
"""

from __future__ import annotations

from servicegroup.grid.controller import register_grid_controllers
from servicegroup.grid.kinds import SECRET_GRID
from servicegroup.kube.setup import ManagerLike


def setup(mgr: ManagerLike) -> None:
    """Register the SecretGrid controller."""
    register_grid_controllers(mgr, (SECRET_GRID,))
