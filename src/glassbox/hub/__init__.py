"""Glassbox Hub: a community registry whose every release carries its evidence.

The hub never verifies anything with logic of its own: publishes go through the trust part's
gate (its namespaces become a trust policy), releases are audited by ``glassbox.audit``, every
signed statement goes into a ``glassbox.tlog`` log in the hub's database, and pulls run the
user's own gate before anything is moved into place. Logs federate through C2SP tiles, and bulk
work runs on Dask distributed.
"""

from glassbox.hub.client import PullResult, publish_model, pull_model
from glassbox.hub.db import HubDB
from glassbox.hub.service import BlobStore, Hub, HubRefused, Published, Upload, open_hub

__all__ = [
    "BlobStore",
    "Hub",
    "HubDB",
    "HubRefused",
    "Published",
    "PullResult",
    "Upload",
    "open_hub",
    "publish_model",
    "pull_model",
]
