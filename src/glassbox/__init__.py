"""Glassbox: make AI models as trustworthy as open-source software.

Parts (each a subpackage, depending downward only):
``cli -> audit -> {build, scan, bom} -> {tlog, sign} -> digest``.
"""

__version__ = "0.1.0"
