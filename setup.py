"""Builds edge_dct._jpeg from cython_ext/ against the system libjpeg-turbo.

libjpeg-turbo is found with pkg-config (Debian/Ubuntu/Raspberry Pi OS:
``apt-get install libjpeg62-turbo-dev pkg-config``; on Ubuntu the package is
``libjpeg-turbo8-dev``).  Set EDGE_DCT_SANITIZE=1 to build with ASan+UBSan.
EDGE_DCT_NO_EXT=1 builds the pure-Python part only: scripts/wheels/build.sh compiles the
extension itself (zig cc, static libjpeg-turbo) and adds it to that wheel per target.
"""

import glob
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup

MISSING_LIBJPEG = """
edge_dct needs libjpeg-turbo's development files, found with pkg-config:
    Debian / Raspberry Pi OS:  sudo apt-get install libjpeg62-turbo-dev pkg-config
    Ubuntu / Jetson:           sudo apt-get install libjpeg-turbo8-dev pkg-config
(or set PKG_CONFIG_PATH to a libjpeg-turbo build's pkgconfig folder)
"""


def pkg_config(*args: str) -> list[str]:
    if shutil.which("pkg-config") is None:
        sys.exit("error: pkg-config not found." + MISSING_LIBJPEG)
    try:
        out = subprocess.run(["pkg-config", *args, "libjpeg"], check=True,
                             capture_output=True, text=True).stdout
    except subprocess.CalledProcessError:
        sys.exit("error: pkg-config cannot find libjpeg." + MISSING_LIBJPEG)
    return shlex.split(out)


def extensions():
    import numpy
    from Cython.Build import cythonize

    cflags = pkg_config("--cflags")
    libs = pkg_config("--libs")
    compile_args = ["-std=c99", "-O3", "-Wall", "-Wno-unused-function"] + cflags
    link_args = list(libs)
    if os.environ.get("EDGE_DCT_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
        compile_args += san
        link_args += san
    ext = Extension(
        "edge_dct._jpeg",
        # the C core is every cython_ext/edct_*.c (scripts/wheels/build.sh compiles the same set)
        sources=["cython_ext/_jpeg.pyx"] + sorted(glob.glob("cython_ext/edct_*.c")),
        include_dirs=["cython_ext", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        libraries=["m"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return cythonize([ext], include_path=["cython_ext"], language_level=3,
                     compiler_directives={"embedsignature": True})


setup(ext_modules=[] if os.environ.get("EDGE_DCT_NO_EXT") else extensions())
