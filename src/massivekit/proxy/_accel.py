"""The C fan-out core (``massivekit.proxy._fanout``), when it was built.

``hatch_build.py`` compiles it at install time; without a compiler the
package installs without it and the proxy routes in pure Python, which stays
the reference (a differential test holds the two to the same output).
Setting ``MASSIVEKIT_PURE_PYTHON=1`` in the environment makes the proxy
ignore the compiled core (for comparisons, or to rule it out).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["fanout"]


def _load() -> ModuleType | None:
    if os.environ.get("MASSIVEKIT_PURE_PYTHON"):
        return None
    try:
        from massivekit.proxy import _fanout
    except ImportError:
        return None
    return _fanout


fanout: ModuleType | None = _load()
"""The compiled module, or ``None`` (not built, or ``MASSIVEKIT_PURE_PYTHON`` set)."""
