"""Upbit's protocol (``backbone.upbit.protocol``, pure functions) and the I/O shells over it
(``backbone.upbit.rest``, ``backbone.upbit.ws``). Import those modules directly; this package
re-exports nothing, so importing the pure protocol never pulls in aiohttp."""

__all__: list[str] = []
