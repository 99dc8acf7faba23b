"""backbone: the live hybrid Upbit client."""

from backbone.unifier import DataUnifier

__all__ = ["DataUnifier"]
