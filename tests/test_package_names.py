"""Each package's public names stay what they document once every submodule is loaded."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

PACKAGES = ("backbone", "recorder", "replay", "analytics", "simulator", "tape")


@pytest.mark.parametrize("name", PACKAGES)
def test_no_public_name_is_shadowed_by_a_submodule(name: str) -> None:
    # Importing ``pkg.x`` sets the attribute ``x`` of ``pkg`` to the module, so a public
    # function ``x`` of the package would turn into a module once something loads it.
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, f"{name}."):
        if not info.name.rpartition(".")[2].startswith("__"):
            importlib.import_module(info.name)
    for public in getattr(package, "__all__", ()):
        value = getattr(package, public)
        assert not isinstance(value, types.ModuleType), (
            f"{name}.{public} is the module {value.__name__}, not what {name}.__all__ promises"
        )
