"""Exceptions that the CLI turns into one readable line instead of a traceback (exit code 2 for bad input)."""

from __future__ import annotations

from typing import Any

from rlcore.stop import exit_code


class UserError(Exception):
    """Bad input from the user (file, config, CLI value). The message names the problem and the fix."""


class ConfigError(UserError):
    """A config value or key is invalid."""


class DataError(UserError):
    """A dataset file is missing, malformed or does not match the task."""


class NonFiniteError(RuntimeError):
    """A loss, gradient or reward became NaN/inf; the run stops and keeps its last good checkpoint."""


class Stopped(KeyboardInterrupt):
    """A stop signal (Ctrl-C, a notebook's interrupt, SIGTERM) ended a training after its checkpoint and summary.

    The message says how to resume in Python; ``command`` is the shell command that resumes it; ``result`` the
    run's :class:`rlcore.RunResult`. A KeyboardInterrupt, so ``except Exception`` does not swallow it.
    """

    def __init__(self, message: str, signum: int, result: Any = None, command: str = ""):
        super().__init__(message)
        self.signum, self.result, self.command = signum, result, command

    @property
    def exit_code(self) -> int:
        """The shell's code for the signal (130 for SIGINT, 143 for SIGTERM)."""
        return exit_code(self.signum)
