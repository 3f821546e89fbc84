"""Put on PYTHONPATH, this makes an interpreter look like memgrid's base install.

Python imports `sitecustomize` at start-up; this one puts a finder first on sys.meta_path
that refuses the packages only the optional extras bring (torch, diffusers, pyarrow, ...).

Why that is the base install, as far as memgrid can tell: memgrid imports those packages
only lazily, inside the functions that use them (tests/test_hygiene.py), and finds out
whether an extra is installed only through the import system (memgrid.core.extras: a spec
search, then the import). In a venv without a package, the spec search finds nothing and
the import raises ModuleNotFoundError naming it; here the spec search raises
ModuleNotFoundError (which memgrid's search reads as "not installed") and so does the
import, with the same name. Nothing else differs: the base packages are the same files.
Building a real venv with pip would take minutes and the network; this takes nothing.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

# Top-level modules of the gen and export extras and of what they pull in; none is a
# dependency of the base install.
BLOCKED = frozenset(
    {
        "torch",
        "torchvision",
        "diffusers",
        "transformers",
        "open_clip",
        "safetensors",
        "huggingface_hub",
        "tokenizers",
        "accelerate",
        "timm",
        "pyarrow",
        "datasets",
    }
)


class BaseInstallFinder(MetaPathFinder):
    """Finds nothing for a blocked package, and says so the way a missing package does."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        return None


sys.meta_path.insert(0, BaseInstallFinder())
