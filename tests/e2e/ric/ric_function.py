"""The aws-lambda-ric test function, built by build_function.sh, for the tests here.

  ric_zip() -> bytes        the zip (built once per process; the npm build is cached in
                            $KILN_RIC_CACHE, default ${TMPDIR:-/tmp}/kiln-ric-cache).
                            Raises unittest.SkipTest with build_function.sh's own words
                            when a prerequisite is missing here (its exit status 3), and
                            RuntimeError on any other failure: a broken build is a failure.
  extract(zip_bytes, dir)   unzips keeping Unix mode bits (bootstrap stays executable).
"""
import io
import os
import subprocess
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(HERE, "build_function.sh")
MISSING_PREREQUISITE = 3
_zip = None


def cache_dir():
    return os.environ.get("KILN_RIC_CACHE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "kiln-ric-cache")


def ric_zip():
    global _zip
    if _zip is None:
        with tempfile.TemporaryDirectory(prefix="kiln-ric-zip-") as tmp:
            out = os.path.join(tmp, "function.zip")
            proc = subprocess.run(["bash", BUILD_SCRIPT, out, cache_dir()],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode == MISSING_PREREQUISITE:
                raise unittest.SkipTest(proc.stderr.strip().splitlines()[-1])
            if proc.returncode != 0:
                raise RuntimeError("build_function.sh failed (%d):\n%s"
                                   % (proc.returncode, proc.stderr[-4000:]))
            with open(out, "rb") as f:
                _zip = f.read()
    return _zip


def extract(zip_bytes, directory):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        for info in z.infolist():
            path = z.extract(info, directory)
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                os.chmod(path, mode)
    return directory
