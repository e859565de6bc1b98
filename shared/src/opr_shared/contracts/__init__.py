"""Event contracts: committed schema snapshots, golden messages and the compatibility check."""

from opr_shared.contracts.compat import breaking_changes, is_compatible

__all__ = ["breaking_changes", "is_compatible"]
