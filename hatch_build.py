"""Build hook: compile the proxy's C fan-out core, ``massivekit.proxy._fanout``.

The package works without it (the pure-Python router is the reference), so a
machine without a C compiler or Python's headers still installs: the hook
says why it skipped and the wheel stays pure. ``MASSIVEKIT_PURE_PYTHON=1``
skips the build on purpose.

An editable install (``pip install -e .``, what ``make`` does) compiles the
module next to its source, in ``src/massivekit/`` (ignored by git); a wheel
carries it and is tagged for this interpreter and platform.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/massivekit/proxy/_fanout.c")
MODULE = "_fanout"
CFLAGS = ("-O2", "-fPIC", "-shared", "-std=c11", "-Wall", "-Wno-missing-field-initializers")


def compile_extension(source: Path, target: Path) -> None:
    """Compile ``source`` into the shared object ``target`` (``$CC``, else the interpreter's).

    Raises:
        OSError, subprocess.CalledProcessError: no compiler, or it failed.
    """
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [*compiler, *CFLAGS, f"-I{include}", str(source), "-o", str(target)]
    subprocess.run(command, check=True, capture_output=True, text=True)


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the compiled module to the wheel (or the source tree when editable)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        source = Path(self.root) / SOURCE
        if version == "editable":
            target = source.with_name(MODULE + suffix)
            target.unlink(missing_ok=True)  # never leave a stale build to be imported
        else:
            target = Path(tempfile.mkdtemp(prefix="massivekit-build-")) / (MODULE + suffix)
        if os.environ.get("MASSIVEKIT_PURE_PYTHON"):
            return
        try:
            compile_extension(source, target)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            print(
                f"massivekit: C fan-out core not built, the pure-Python router will be used "
                f"({detail.strip()[:500]})",
                file=sys.stderr,
            )
            return
        if version != "editable":
            build_data["force_include"][str(target)] = f"massivekit/proxy/{MODULE}{suffix}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
