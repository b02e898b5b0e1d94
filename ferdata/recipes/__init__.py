"""Paper recipes: each paper's experiment as a small TOML file, rerun with one call.

``list_recipes()`` names the shipped recipes, ``create_recipe(name)`` reads one,
``reproduce(recipe, dataset_dir)`` runs it (ingest → preprocess → split → train →
evaluate) and returns the measured figures beside the paper's, for the paper's protocol
and the strictly person-independent one.
"""

from ferdata.recipes._registry import RECIPES, create_recipe, list_recipes, register_recipe_file
from ferdata.recipes.run import ReproduceOptions, ReproduceResult, RowResult, reproduce, resolve_recipe
from ferdata.recipes.schema import Recipe, load_recipe_file, parse_recipe

__all__ = ["RECIPES", "Recipe", "ReproduceOptions", "ReproduceResult", "RowResult", "create_recipe", "list_recipes",
           "load_recipe_file", "parse_recipe", "register_recipe_file", "reproduce", "resolve_recipe"]
