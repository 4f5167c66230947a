"""Condition types and reasons; the same reason string names the condition and its Event."""

from typing import Final

# Condition types
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
CHILD_CONFLICT: Final = "ChildConflict"

# Reasons
UNITS_READY: Final = "UnitsReady"
UNITS_NOT_READY: Final = "UnitsNotReady"
NO_UNITS: Final = "NoUnits"
SERVICE_READY: Final = "ServiceReady"
SERVICE_PENDING: Final = "ServicePending"
AS_EXPECTED: Final = "AsExpected"
NO_CONFLICT: Final = "NoConflict"
CHILD_NOT_OWNED: Final = "ChildNotOwned"
TEMPLATE_NOT_FOUND: Final = "TemplateNotFound"
INVALID_CHILD_NAME: Final = "InvalidChildName"
INVALID_GRID_KEY: Final = "InvalidGridKey"
EMPTY_GRID_KEY: Final = "Empty"  # SuperEdge's reason for an empty gridUniqKey
INVALID_GRID_NAME: Final = "InvalidGridName"
APPLY_FAILED: Final = "ApplyFailed"
CHILD_REJECTED: Final = "ChildRejected"
TEMPLATES_PRUNED: Final = "UnusedTemplatesDeleted"

# Event-only reasons (transitions)
CHILD_CREATED: Final = "ChildCreated"
CHILD_UPDATED: Final = "ChildUpdated"
CHILD_DELETED: Final = "ChildDeleted"

# Per-unit configuration problems (docs/site-config.md): the unit's child is held as it is
OVERRIDE_FAILED: Final = "OverrideFailed"
INVALID_PLACEHOLDER: Final = "InvalidPlaceholder"
CONFIG_UNAVAILABLE: Final = "ConfigUnavailable"
