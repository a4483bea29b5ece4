"""Reproducible model builds: recipes, hermetic deterministic training, SLSA v1 provenance,
checkpoint trails, rebuilds and spot-checks (see DESIGN.md); pipelines of such steps.

This is the part DESIGN.md calls ``build`` (the ``glassbox build`` command keeps that name). It
was ``glassbox.build`` until packaging tools, editors and code-structure tools kept treating the
folder as generated output; ``glassbox.pipeline`` says what it grows into: data preparation,
labelling, training and fine-tuning as a chain of hermetic, provenance-bearing steps.

Importing this package does not import torch; the training itself runs in a child process.
"""

from glassbox.pipeline.builder import BuildResult, NotHermeticError, build
from glassbox.pipeline.context import DatasetView, SegmentDone, TrainingAPIError, TrainingContext
from glassbox.pipeline.hermetic import Hermeticity, RefusedError
from glassbox.pipeline.loader import load_built_model
from glassbox.pipeline.provenance import (
    BUILDER_ID,
    BUNDLE_NAME,
    SLSA_PREDICATE_TYPE,
    STATEMENT_NAME,
    Provenance,
    load_provenance,
)
from glassbox.pipeline.rebuild import RebuildReport, rebuild
from glassbox.pipeline.recipe import BUILD_TYPE, Recipe, RecipeError, load_recipe, parse_recipe
from glassbox.pipeline.runner import BuildFailed
from glassbox.pipeline.spotcheck import SegmentCheck, SpotCheckReport, spot_check
from glassbox.pipeline.trail import Trail, TrailEntry, TrainingState

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
