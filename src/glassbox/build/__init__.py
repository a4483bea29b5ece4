"""Reproducible model builds: recipes, hermetic deterministic training, SLSA v1 provenance,
checkpoint trails, rebuilds and spot-checks (see DESIGN.md).

Importing this package does not import torch; the training itself runs in a child process.
"""

from glassbox.build.builder import BuildResult, NotHermeticError, build
from glassbox.build.context import DatasetView, SegmentDone, TrainingAPIError, TrainingContext
from glassbox.build.hermetic import Hermeticity, RefusedError
from glassbox.build.loader import load_built_model
from glassbox.build.provenance import (
    BUILDER_ID,
    BUNDLE_NAME,
    SLSA_PREDICATE_TYPE,
    STATEMENT_NAME,
    Provenance,
    load_provenance,
)
from glassbox.build.rebuild import RebuildReport, rebuild
from glassbox.build.recipe import BUILD_TYPE, Recipe, RecipeError, load_recipe, parse_recipe
from glassbox.build.runner import BuildFailed
from glassbox.build.spotcheck import SegmentCheck, SpotCheckReport, spot_check
from glassbox.build.trail import Trail, TrailEntry, TrainingState

__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "BUNDLE_NAME",
    "SLSA_PREDICATE_TYPE",
    "STATEMENT_NAME",
    "BuildFailed",
    "BuildResult",
    "DatasetView",
    "Hermeticity",
    "NotHermeticError",
    "Provenance",
    "RebuildReport",
    "Recipe",
    "RecipeError",
    "RefusedError",
    "SegmentCheck",
    "SegmentDone",
    "SpotCheckReport",
    "Trail",
    "TrailEntry",
    "TrainingAPIError",
    "TrainingContext",
    "TrainingState",
    "build",
    "load_built_model",
    "load_provenance",
    "load_recipe",
    "parse_recipe",
    "rebuild",
    "spot_check",
]
