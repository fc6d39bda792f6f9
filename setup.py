"""Build the Cython hot path in cext/ unless CFGATE_NO_EXTENSIONS is set.

Every ``cext/<name>.pyx`` becomes the extension module ``cext.<name>``; each has a pure-Python
twin that the selector modules fall back to. ``CFGATE_CYTHON_ANNOTATE=1`` writes the HTML
annotation next to the sources (where Python objects remain in the hot loop).
"""

import os
from pathlib import Path

from setuptools import setup

NO_EXTENSIONS = os.environ.get("CFGATE_NO_EXTENSIONS", "") not in ("", "0")


def extensions() -> list:
    if NO_EXTENSIONS:
        print("*** cfgate: pure-Python build (CFGATE_NO_EXTENSIONS set) ***")
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    sources = sorted(Path("cext").glob("*.pyx"))
    modules = [Extension(f"cext.{src.stem}", [str(src)], extra_compile_args=["-O3"]) for src in sources]
    print(f"*** cfgate: accelerated build ({', '.join(m.name for m in modules)}) ***")
    return cythonize(
        modules,
        language_level=3,
        annotate=os.environ.get("CFGATE_CYTHON_ANNOTATE") == "1",
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )


setup(ext_modules=extensions())
