"""The raw tap: raw WebSocket frames and REST bodies from the backbone to the recorder.

The backbone takes its ``raw_sink`` when it is built, before the recorder opens, so the two
meet through a :class:`RawTap`: build the tap, give it to the backbone as ``raw_sink`` and to
the :class:`~recorder.capture.Recorder` as ``raw_tap``. Frames arriving before the recorder
attaches (the backbone's start-up requests) are held, up to ``backlog`` of them; beyond that
the oldest are dropped and counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from backbone.models import RawFrame

__all__ = ["RawTap"]


class RawTap:
    """A callable raw sink for the backbone; the recorder attaches to it."""

    def __init__(self, backlog: int = 10_000) -> None:
        self._held: deque[RawFrame] = deque(maxlen=backlog)
        self._target: Callable[[RawFrame], object] | None = None
        self.dropped = 0
        """Frames lost because nothing was attached and the backlog was full."""

    def __call__(self, frame: RawFrame) -> None:
        target = self._target
        if target is not None:
            target(frame)
            return
        if len(self._held) == self._held.maxlen:
            self.dropped += 1
        self._held.append(frame)

    def attach(self, target: Callable[[RawFrame], object]) -> None:
        """Send every held frame, then every new one, to ``target``."""
        while self._held:
            target(self._held.popleft())
        self._target = target

    def detach(self) -> None:
        """Stop forwarding; later frames are held again (idempotent)."""
        self._target = None
