"""Exceptions that the CLI turns into one readable line instead of a traceback (exit code 2 for bad input)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, config, CLI value). The message names the problem and the fix."""


class ConfigError(UserError):
    """A config value or key is invalid."""


class DataError(UserError):
    """A dataset file is missing, malformed or does not match the task."""


class NonFiniteError(RuntimeError):
    """A loss, gradient or reward became NaN/inf; the run stops and keeps its last good checkpoint."""


class Stopped(Exception):
    """A stop signal ended the training after a checkpoint and the summary; the message says how to resume.

    ``exit_code`` is the shell's code for the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
