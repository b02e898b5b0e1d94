"""The recipe registry (a leaf: the recipe package imports it, it imports no recipe code).

Every ``*.toml`` in ``ferdata/recipes/files`` is a recipe named after its file; installed
packages add theirs through the ``ferdata.recipes`` entry-point group (a callable that calls
:func:`register_recipe_file`). A member is read when first asked for.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ferdata.recipes.schema import Recipe, load_recipe_file
from ferdata.registry import Registry

FILES = Path(__file__).resolve().parent / "files"

RECIPES: Registry[Recipe] = Registry("recipe", entry_point_group="ferdata.recipes")


def register_recipe_file(path: str | Path) -> None:
    """Register the recipe in ``path`` under its file name (read when first asked for)."""
    path = Path(path)
    RECIPES.add(path.stem, partial(load_recipe_file, path))


def _load_shipped() -> None:
    for path in sorted(FILES.glob("*.toml")):
        register_recipe_file(path)


RECIPES.add_loader(_load_shipped)
list_recipes = RECIPES.list
create_recipe = RECIPES.create
get_recipe = RECIPES.get
