"""Propmubi: the back office and API for new-build real estate.

Plugins import what they need from here: the ``hookimpl`` marker and the public types.
"""

import pluggy

from propmubi import aiocompat

# Before anything else runs: Python 3.11's asyncio.wait_for loses cancellations (see aiocompat).
aiocompat.install()

__version__ = "0.1.0"
PROJECT_NAME = "propmubi"

#: Mark a plugin's hook implementations: ``@hookimpl def propmubi_api_routes(): ...``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
