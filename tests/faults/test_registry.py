"""The driver registry covers every fault kind of this area's families."""

from __future__ import annotations

import doctest
import importlib

import pytest

from chaoslab.faults import driver_for
from chaoslab.model.faults import FAULT_MODELS


class TestDriverFor:
    """driver_for(family) gives a driver that claims each kind of that family."""

    @pytest.mark.parametrize("family", ["toxiproxy", "process", "pool", "disk"])
    def test_every_kind_of_the_family_is_claimed(self, family: str) -> None:
        """The driver's ``kinds`` are exactly the spec kinds whose family it serves."""
        kinds = sorted(kind for kind, model in FAULT_MODELS.items() if model.family == family)
        assert sorted(driver_for(family).kinds) == kinds


class TestDocExamples:
    """The examples in the fault modules' docstrings hold."""

    @pytest.mark.parametrize("module", ["chaoslab.faults.pool", "chaoslab.faults.disk"])
    def test_doctests_pass(self, module: str) -> None:
        """Every doctest example of the module gives the output it shows."""
        result = doctest.testmod(importlib.import_module(module))
        assert (result.failed, result.attempted > 0) == (0, True)
