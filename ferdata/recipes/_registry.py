"""The recipe registry: every ``*.toml`` in ``ferdata/recipes/files`` is a named recipe.

Kept in a leaf module (timm's ``_registry.py``): the package imports it, never the reverse.
"""

from __future__ import annotations

from pathlib import Path

from ferdata.recipes.schema import Recipe, load_recipe_file
from ferdata.registry import Registry

FILES = Path(__file__).resolve().parent / "files"

RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe_file(path: Path) -> None:
    """Register the recipe in ``path`` under its file name (read when first asked for)."""
    RECIPES.register(path.stem)(lambda: load_recipe_file(path))


def _load_shipped() -> None:
    for path in sorted(FILES.glob("*.toml")):
        if path.stem not in RECIPES._entries:
            register_recipe_file(path)


RECIPES.add_loader(_load_shipped)


def list_recipes(pattern: str | None = None) -> list[str]:
    """Names of the shipped recipes, optionally filtered with a shell wildcard (``p001-*``)."""
    return RECIPES.names(pattern)


def create_recipe(name: str) -> Recipe:
    """A shipped recipe by name."""
    return RECIPES.create(name)
