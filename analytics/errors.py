"""The exceptions analytics raises, grouped by what the caller does next.

::

    AnalyticsError                 base: nothing here is retried
    ├── NotARecording              the folder holds no tape recording: pass the right one
    ├── UnreadableRecording        a file's schema version is unknown: upgrade tape
    ├── RecordingChanged           files kept vanishing while read (compactions): run again
    └── BadThreshold               a ``METRIC>VALUE`` expression is wrong: fix the expression
"""

from __future__ import annotations

__all__ = [
    "AnalyticsError",
    "BadThreshold",
    "NotARecording",
    "RecordingChanged",
    "UnreadableRecording",
]


class AnalyticsError(Exception):
    """Base of every analytics error: the message says what to change."""


class NotARecording(AnalyticsError):
    """The folder is not a recording root: pass the folder given to ``tape record --out``."""


class UnreadableRecording(AnalyticsError):
    """The recording holds files this tape cannot read (unknown schema version): upgrade tape."""


class RecordingChanged(AnalyticsError):
    """Files of the recording vanished while they were read, run after run (a compaction
    replaced them): run again once it is done."""


class BadThreshold(AnalyticsError):
    """A threshold expression names an unknown metric or is malformed: correct it."""
