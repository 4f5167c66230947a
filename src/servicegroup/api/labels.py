"""Every API group, label, annotation and finalizer key of the SuperEdge contract, in one place.

Existing SuperEdge manifests must keep working unchanged, so these strings are copied exactly
from SuperEdge (see docs/superedge-compat.md); our own additions live under `servicegroup.io`.
"""

from collections.abc import Mapping
from typing import Any, Final

# API groups and versions
GRID_GROUP: Final = "superedge.io"
GRID_VERSION: Final = "v1"
GRID_API_VERSION: Final = f"{GRID_GROUP}/{GRID_VERSION}"
SITE_GROUP: Final = "site.superedge.io"
SITE_VERSION: Final = "v1alpha2"
SITE_API_VERSION: Final = f"{SITE_GROUP}/{SITE_VERSION}"
OWN_GROUP: Final = "servicegroup.io"  # our own kinds (ConfigMapGrid, SecretGrid)
OWN_VERSION: Final = "v1alpha1"
OWN_API_VERSION: Final = f"{OWN_GROUP}/{OWN_VERSION}"

# Labels on grid children
GRID_SELECTOR: Final = "superedge.io/grid-selector"
GRID_UNIQ_KEY: Final = "superedge.io/grid-uniq-key"
TEMPLATE_HASH_KEY: Final = "superedge.io/template-hash-key"

# Service annotation read by the traffic proxy: JSON list of node label keys
TOPOLOGY_KEYS: Final = "topologyKeys"
DEFAULT_TEMPLATE_NAME: Final = "default"

# Per-site configuration (ConfigMapGrid / SecretGrid, overrides): docs/site-config.md
CONFIG_HASH: Final = "servicegroup.io/config-hash"  # on config children and on pod templates using them

# Multi-cluster ("fed") mode
FED_LABEL: Final = "superedge.io/fed"
DIS_LABEL: Final = "superedge.io/dis"
TARGET_NAMESPACE_LABEL: Final = "superedge.io/target-namespace"


def is_fed(grid: Mapping[str, Any]) -> bool:
    """A control grid to distribute: the fed label (any value, as SuperEdge) and not itself a copy.
    Here, not in fed/, because the grid controller leaves such grids to fed."""
    labels = (grid.get("metadata") or {}).get("labels") or {}
    return FED_LABEL in labels and DIS_LABEL not in labels


# Site manager label contract (§5.1 of the SuperEdge spec)
NODEUNIT_MEMBER_VALUE: Final = "nodeunits.superedge.io"
NODEGROUP_MEMBER_VALUE: Final = "nodegroups.superedge.io"
NODEGROUP_AUTO_KEYS_HASH: Final = "site.superedge.io/node-group-auto-keys-hash"
NODEUNIT_FINALIZER: Final = "site.superedge.io/nodeunit"
NODEGROUP_FINALIZER: Final = "site.superedge.io/finalizer"

# Field managers, one per component
FIELD_MANAGER_GRID: Final = "servicegroup-grid"
FIELD_MANAGER_SITE: Final = "servicegroup-site"
FIELD_MANAGER_FED: Final = "servicegroup-fed"

# Our own additions (servicegroup.io)
SITE_OWNED_ANNOTATION: Final = "servicegroup.io/site-owned"  # node: what the site manager set
TOPOLOGY_FALLBACK: Final = "servicegroup.io/topology-fallback"  # Service: none | anywhere
FED_MEMBER_LABEL: Final = "servicegroup.io/cluster"  # Secret: value "true" marks a member kubeconfig
FED_CONTROL_ANNOTATION: Final = "servicegroup.io/control-cluster"  # member copy: which control owns it
FED_FINALIZER: Final = "servicegroup.io/fed-cleanup"  # control grid: copies live outside GC
