"""Glassbox: make AI models as trustworthy as open-source software.

Parts (each a subpackage, depending downward only):
``cli -> hub -> audit -> {pipeline, lm, bom} -> trust -> {scan, tlog} -> sign -> digest``
(``pipeline`` is DESIGN.md's ``build`` part: recipes, hermetic builds, provenance, pipelines).
"""

__version__ = "0.1.0"
