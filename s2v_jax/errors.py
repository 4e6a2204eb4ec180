"""Error types the library raises for bad input or configuration.

Each error carries a message meant for a person: which file or field, what was
wrong, and what to do. The `s2v` command prints it on one line and exits 2,
with no traceback.
"""


class S2VError(Exception):
    """Base class: a user-facing error with a one-line, actionable message."""


class ConfigError(S2VError):
    """A config file is missing or unreadable, or names an unknown field."""


class MediaError(S2VError):
    """An audio, image or video file cannot be read or is unusable."""


class NoFaceError(MediaError):
    """No face was found where one is needed."""


class DataError(S2VError):
    """A dataset is missing, empty or inconsistent."""


class TrainingError(S2VError):
    """Training cannot go on (non-finite loss, bad checkpoint, ...)."""


class MissingDependencyError(S2VError):
    """An optional part of the library is used without the package it needs (its extra names it)."""
