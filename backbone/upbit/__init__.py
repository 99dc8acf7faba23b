"""backbone/upbit."""
