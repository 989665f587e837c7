"""The runnable examples in rlcore.geometry's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["correlation", "features", "novelty", "per_sample", "projection", "similarity"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"rlcore.geometry.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
