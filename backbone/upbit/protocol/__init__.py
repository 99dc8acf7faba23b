"""backbone/upbit/protocol."""
