"""SynthFaces under its former module path: a re-export of :mod:`pclkit.data.synthfaces`.

``from pclkit.data.synthetic import SynthFaces, render, Factors`` keeps working;
new code imports from :mod:`pclkit.data.synthfaces`.
"""

from __future__ import annotations

from pclkit.data.synthfaces import *  # noqa: F401,F403 -- the public API, re-exported
from pclkit.data.synthfaces import __all__ as _PUBLIC
from pclkit.threads import torch_threads  # noqa: F401 -- was exported here

__all__ = [*_PUBLIC, "torch_threads"]
