"""Exceptions that the CLI turns into one readable line (exit code 2) instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, config, CLI value). The message names the problem and the fix."""


class ConfigError(UserError):
    """A config value or key is invalid."""


class DataError(UserError):
    """A dataset file is missing, malformed or does not match the task."""


class NonFiniteError(RuntimeError):
    """A loss, gradient or reward became NaN/inf; the run stops and keeps its last good checkpoint."""
