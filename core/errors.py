"""Errors a user can act on.

Every failure that comes from the user's input (a setting, a path, a file, a request) is raised as a
``ShieldkitError`` subclass with a message that says what was wrong and what was found. The CLI prints these
without a traceback; the API maps them to OpenAI-style error bodies.
"""


class ShieldkitError(Exception):
    """Base class: the message is meant for the user, as is."""


class ConfigError(ShieldkitError, ValueError):
    """A setting or configuration value is invalid."""


class ModelSourceError(ShieldkitError):
    """A model path is missing, unreadable or not a Gemma checkpoint."""


class DataError(ShieldkitError, ValueError):
    """A data file or a text input is malformed."""
