"""Reproducible model builds: recipes, hermetic deterministic training, SLSA v1 provenance,
checkpoint trails, rebuilds and spot-checks (see DESIGN.md); pipelines of such steps.

This is the part DESIGN.md calls ``build`` (the ``glassbox build`` command keeps that name). It
was ``glassbox.build`` until packaging tools, editors and code-structure tools kept treating the
folder as generated output; ``glassbox.pipeline`` says what it grows into: data preparation,
labelling, training and fine-tuning as a chain of hermetic, provenance-bearing steps.

Importing this package does not import torch; the training itself runs in a child process.
Names are imported on first use: a step's child process imports ``glassbox.pipeline.hermetic``
first thing, and must not pay for the builder, the lineage walk and signing on every start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassbox.pipeline.builder import BuildResult, NotHermeticError, build
    from glassbox.pipeline.context import (
        DatasetView,
        SegmentDone,
        TrainingAPIError,
        TrainingContext,
    )
    from glassbox.pipeline.dag import PipelineRebuild, PipelineRun, rebuild_pipeline, run_pipeline
    from glassbox.pipeline.hermetic import Hermeticity, RefusedError
    from glassbox.pipeline.labels import LABEL_PREDICATE_TYPE, LabelCheck, check_labels, sign_labels
    from glassbox.pipeline.lineage import LineageReport, StepVerdict, find_lock, verify_lineage
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
    from glassbox.pipeline.spec import PIPELINE_TYPE, Pipeline, PipelineError, load_pipeline
    from glassbox.pipeline.spotcheck import SegmentCheck, SpotCheckReport, spot_check
    from glassbox.pipeline.step_context import InputDataset, StepContext
    from glassbox.pipeline.steps import STEP_BUILD_TYPE
    from glassbox.pipeline.trail import Trail, TrailEntry, TrainingState

_LAZY = {
    "BUILDER_ID": "glassbox.pipeline.provenance",
    "BUILD_TYPE": "glassbox.pipeline.recipe",
    "BUNDLE_NAME": "glassbox.pipeline.provenance",
    "BuildFailed": "glassbox.pipeline.runner",
    "BuildResult": "glassbox.pipeline.builder",
    "DatasetView": "glassbox.pipeline.context",
    "Hermeticity": "glassbox.pipeline.hermetic",
    "InputDataset": "glassbox.pipeline.step_context",
    "LABEL_PREDICATE_TYPE": "glassbox.pipeline.labels",
    "LabelCheck": "glassbox.pipeline.labels",
    "LineageReport": "glassbox.pipeline.lineage",
    "NotHermeticError": "glassbox.pipeline.builder",
    "PIPELINE_TYPE": "glassbox.pipeline.spec",
    "Pipeline": "glassbox.pipeline.spec",
    "PipelineError": "glassbox.pipeline.spec",
    "PipelineRebuild": "glassbox.pipeline.dag",
    "PipelineRun": "glassbox.pipeline.dag",
    "Provenance": "glassbox.pipeline.provenance",
    "RebuildReport": "glassbox.pipeline.rebuild",
    "Recipe": "glassbox.pipeline.recipe",
    "RecipeError": "glassbox.pipeline.recipe",
    "RefusedError": "glassbox.pipeline.hermetic",
    "SLSA_PREDICATE_TYPE": "glassbox.pipeline.provenance",
    "STATEMENT_NAME": "glassbox.pipeline.provenance",
    "STEP_BUILD_TYPE": "glassbox.pipeline.steps",
    "SegmentCheck": "glassbox.pipeline.spotcheck",
    "SegmentDone": "glassbox.pipeline.context",
    "SpotCheckReport": "glassbox.pipeline.spotcheck",
    "StepContext": "glassbox.pipeline.step_context",
    "StepVerdict": "glassbox.pipeline.lineage",
    "Trail": "glassbox.pipeline.trail",
    "TrailEntry": "glassbox.pipeline.trail",
    "TrainingAPIError": "glassbox.pipeline.context",
    "TrainingContext": "glassbox.pipeline.context",
    "TrainingState": "glassbox.pipeline.trail",
    "build": "glassbox.pipeline.builder",
    "check_labels": "glassbox.pipeline.labels",
    "find_lock": "glassbox.pipeline.lineage",
    "load_built_model": "glassbox.pipeline.loader",
    "load_pipeline": "glassbox.pipeline.spec",
    "load_provenance": "glassbox.pipeline.provenance",
    "load_recipe": "glassbox.pipeline.recipe",
    "parse_recipe": "glassbox.pipeline.recipe",
    "rebuild": "glassbox.pipeline.rebuild",
    "rebuild_pipeline": "glassbox.pipeline.dag",
    "run_pipeline": "glassbox.pipeline.dag",
    "sign_labels": "glassbox.pipeline.labels",
    "spot_check": "glassbox.pipeline.spotcheck",
    "verify_lineage": "glassbox.pipeline.lineage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'glassbox.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "BUNDLE_NAME",
    "LABEL_PREDICATE_TYPE",
    "PIPELINE_TYPE",
    "SLSA_PREDICATE_TYPE",
    "STATEMENT_NAME",
    "STEP_BUILD_TYPE",
    "BuildFailed",
    "BuildResult",
    "DatasetView",
    "Hermeticity",
    "InputDataset",
    "LabelCheck",
    "LineageReport",
    "NotHermeticError",
    "Pipeline",
    "PipelineError",
    "PipelineRebuild",
    "PipelineRun",
    "Provenance",
    "RebuildReport",
    "Recipe",
    "RecipeError",
    "RefusedError",
    "SegmentCheck",
    "SegmentDone",
    "SpotCheckReport",
    "StepContext",
    "StepVerdict",
    "Trail",
    "TrailEntry",
    "TrainingAPIError",
    "TrainingContext",
    "TrainingState",
    "build",
    "check_labels",
    "find_lock",
    "load_built_model",
    "load_pipeline",
    "load_provenance",
    "load_recipe",
    "parse_recipe",
    "rebuild",
    "rebuild_pipeline",
    "run_pipeline",
    "sign_labels",
    "spot_check",
    "verify_lineage",
]
