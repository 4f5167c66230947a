"""Condition types and reasons of the fed controller; a reason names its condition and its Event."""

from typing import Final

# Condition types on control grids (next to the grid controller's Ready and Degraded)
MEMBERS_REACHABLE: Final = "MembersReachable"
DISTRIBUTED: Final = "Distributed"

# Reasons
ALL_REACHABLE: Final = "AllReachable"
MEMBERS_UNREACHABLE: Final = "MembersUnreachable"
COPIES_IN_SYNC: Final = "CopiesInSync"
COPIES_PENDING: Final = "CopiesPending"
NO_MEMBERS: Final = "NoMembers"
UNITS_SPLIT: Final = "UnitSplitAcrossMembers"
COPY_NOT_OWNED: Final = "CopyNotOwned"
COPY_REJECTED: Final = "CopyRejected"
KIND_NOT_INSTALLED: Final = "KindNotInstalled"

# Event-only reasons
COPY_CREATED: Final = "CopyCreated"
COPY_UPDATED: Final = "CopyUpdated"
COPY_DELETED: Final = "CopyDeleted"
INVALID_MEMBER: Final = "InvalidMemberSecret"
MEMBER_CONNECTED: Final = "MemberConnected"
