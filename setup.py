"""Build script for the one thing pyproject.toml cannot say: the optional compiled engine.

``sim/engine.py`` is compiled with Cython (typed by ``sim/engine.pxd``) into the extension
``sim._engine_compiled``. The build copies the two files under ``build/cython/`` with the
module's name, and appends to the copy the SHA-256 of the sources, which ``sim/engine.py``
checks before it uses the extension (see "The compiled engine" at its end). The extension is
optional: without Cython (set ``RARE_EARTH_SIM_PURE_BUILD=1`` to skip it) or when the C
compiler fails, the install goes on and the engine runs as pure Python, with the same results.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
COPY_DIR = Path("build", "cython", "sim")     # relative: setuptools wants relative sources


def source_digest(source: bytes, declarations: bytes) -> str:
    """The digest ``sim.engine.source_digest`` computes (keep the two identical)."""
    return hashlib.sha256(source + b"\0" + declarations).hexdigest()


class OptionalBuildExt(build_ext):
    """``build_ext`` for which the compiled engine is optional whatever fails: setuptools'
    own ``optional=True`` does not catch every compiler failure (a failing compiler command
    can surface as ``subprocess.CalledProcessError``), and the install must go on."""

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"rare-earth-sim: the compiled engine was not built ({exc}); the engine will "
                  "run as pure Python (same results, slower)", file=sys.stderr)


def compiled_engine() -> list:
    """The extension modules to build: the compiled engine, or none."""
    if os.environ.get("RARE_EARTH_SIM_PURE_BUILD"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("rare-earth-sim: Cython is not available; the engine will run as pure Python",
              file=sys.stderr)
        return []
    source = (HERE / "sim" / "engine.py").read_bytes()
    declarations = (HERE / "sim" / "engine.pxd").read_bytes()
    work = HERE / COPY_DIR
    work.mkdir(parents=True, exist_ok=True)
    (work / "__init__.py").write_text("")       # so Cython names the module sim._engine_compiled
    digest = source_digest(source, declarations)
    (work / "_engine_compiled.py").write_bytes(
        source + f'\n\nSOURCE_DIGEST = "{digest}"\n'.encode())
    (work / "_engine_compiled.pxd").write_bytes(declarations)   # the bytes in the digest
    extension = Extension(
        "sim._engine_compiled", [str(COPY_DIR / "_engine_compiled.py")],
        # no fused multiply-add: the compiled arithmetic must round exactly as Python's does
        extra_compile_args=["-ffp-contract=off"] if os.name != "nt" else ["/fp:precise"],
    )
    try:
        extensions = cythonize(
            [extension], quiet=True,
            compiler_directives={"language_level": 3,
                                 "annotation_typing": False,   # types come from engine.pxd only
                                 "embedsignature": True},
        )
    except Exception as exc:        # e.g. engine.py edited in a way Cython does not compile
        print(f"rare-earth-sim: Cython could not compile sim/engine.py ({exc}); the engine "
              "will run as pure Python", file=sys.stderr)
        return []
    for ext in extensions:
        # a compiler failure skips the extension, not the install (set here: cythonize's
        # copies of an Extension drop the flag, and an editable install needs it to skip
        # copying a library that was never built)
        ext.optional = True
    return extensions


setup(ext_modules=compiled_engine(), cmdclass={"build_ext": OptionalBuildExt})
