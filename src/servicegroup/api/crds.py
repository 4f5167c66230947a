"""CRD manifests of every kind we own, assembled from the per-capability schema modules."""

from __future__ import annotations

from typing import Any


def all_crds() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition servicegroup installs, in apply order."""
    from servicegroup.api import config_crds, grid_crds, site_crds

    return [*grid_crds.crds(), *config_crds.crds(), *site_crds.crds()]
