"""
Packaging: the plugin reaches twistd from a built wheel, a plain install and
the editable install that README.rst tells developers to use.

These tests build the project with pip, so they need pip and (for build
isolation) the package index; they take some seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from typing import Dict, List, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_built: Dict[str, str] = {}


def run(argv: List[str], cwd: str, env: Optional[Dict[str, str]] = None, timeout: float = 300) -> str:
    """
    Run a command; fail with its output if it fails.
    """
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def sourceCopy(into: str) -> str:
    """
    Copy the source tree, without build products, into C{into}.
    """
    ignore = shutil.ignore_patterns(
        ".git",
        "build",
        "dist",
        "*.egg-info",
        ".tox",
        ".venv",
        "__pycache__",
        "_trial_temp*",
        ".*_cache",
        "dropin.cache",
    )
    target = os.path.join(into, "src")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def wheel(workdir: str) -> str:
    """
    Build the project's wheel once per test run and return its path.
    """
    if "wheel" not in _built:
        os.makedirs(workdir)
        source = sourceCopy(workdir)
        out = os.path.join(workdir, "dist")
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source], cwd=workdir)
        (name,) = os.listdir(out)
        _built["wheel"] = os.path.join(out, name)
    return _built["wheel"]


def twistdHelp(pythonPath: List[str], cwd: str) -> str:
    """
    Run C{twistd --help} with exactly C{pythonPath} (and no C{.pth} files, so
    no editable install) as its import path.
    """
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; "
        "from twisted.scripts.twistd import run; sys.argv = ['twistd', '--help']; run()"
    )
    return run([sys.executable, "-S", "-c", code, *pythonPath], cwd=cwd)


class WheelTests(SynchronousTestCase):
    """
    The wheel holds the plugin file and nothing that would shadow Twisted.
    """

    def test_contents(self) -> None:
        """
        C{twisted/plugins/linelogger_plugin.py} is in the wheel; no
        C{__init__.py} for C{twisted} or C{twisted.plugins}, no
        C{dropin.cache}, and the whole C{logger_service} package, its
        subpackages (which setup.cfg lists one by one) included, and the C
        modules built for this Python.
        """
        names = set(zipfile.ZipFile(wheel(os.path.abspath(self.mktemp()))).namelist())
        self.assertIn("twisted/plugins/linelogger_plugin.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertFalse([n for n in names if n.endswith("dropin.cache")])
        sources = {
            os.path.relpath(os.path.join(folder, n), ROOT).replace(os.sep, "/")
            for folder, _, files in os.walk(os.path.join(ROOT, "logger_service"))
            for n in files
            if n.endswith(".py")
        }
        self.assertIn("logger_service/framing/__init__.py", sources)
        self.assertEqual(sources - names, set())
        # The C modules built for this Python, their sources and type stubs.
        for module in ("_scan", "_escape"):
            built = f"logger_service/{module}{sysconfig.get_config_var('EXT_SUFFIX')}"
            self.assertEqual(
                sorted(n for n in names if n.startswith(f"logger_service/{module}.")),
                sorted([f"logger_service/{module}.c", f"logger_service/{module}.pyi", built]),
            )

    def test_webFiles(self) -> None:
        """
        The files C{--web} serves (the page's HTML, CSS and JavaScript) are
        in the wheel, every one of them.
        """
        names = set(zipfile.ZipFile(wheel(os.path.abspath(self.mktemp()))).namelist())
        static = os.path.join(ROOT, "logger_service", "static")
        files = {f"logger_service/static/{n}" for n in os.listdir(static)}
        self.assertIn("logger_service/static/index.html", files)
        self.assertIn("logger_service/static/tail.html", files)
        self.assertEqual(files - names, set())

    def test_installedCopyListsPlugin(self) -> None:
        """
        Installed from the wheel (not editable), C{twistd --help} lists
        C{linelogger}, and C{twistd linelogger --help} shows its options.
        """
        work = os.path.abspath(self.mktemp())
        target = os.path.join(work, "site")
        run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel(work + "-build")],
            cwd=ROOT,
        )
        emptyDir = os.path.join(work, "empty")
        os.makedirs(emptyDir)
        sitePackages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        output = twistdHelp([target, *sitePackages], cwd=emptyDir)
        self.assertIn("linelogger", output)
        self.assertIn("Record newline-delimited text", output)
        self.assertTrue(os.path.exists(os.path.join(target, "logger_service", "tap.py")))
        # Without the installed copy, the plugin is not there: the check is real.
        self.assertNotIn("linelogger", twistdHelp(sitePackages, cwd=emptyDir))


class EnvironmentTests(SynchronousTestCase):
    """
    The environment running the tests, installed as README.rst says.
    """

    def test_twistdListsPlugin(self) -> None:
        """
        The C{twistd} of this environment, run away from the source tree,
        lists C{linelogger} (for an editable install this is the trap that
        setuptools' import-hook editable mode falls into).
        """
        try:
            dist = metadata.distribution("linelogger")
        except metadata.PackageNotFoundError:
            raise SkipTest("linelogger is not installed in this environment") from None
        direct = dist.read_text("direct_url.json")
        editable = bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))
        empty = os.path.abspath(self.mktemp())
        os.makedirs(empty)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        output = run([twistd, "--help"], cwd=empty, env=env)
        self.assertIn("linelogger", output, f"editable install: {editable}")

    def test_dropinCacheIgnored(self) -> None:
        """
        Twisted's plugin cache, written next to the plugin, is never
        committed.
        """
        self.assertIgnored("twisted/plugins/dropin.cache")

    def test_twistdFilesIgnored(self) -> None:
        """
        What twistd writes where it runs (C{twistd.pid}, and C{twistd.log}
        for a daemon) is never committed either.
        """
        for path in ("twistd.pid", "twistd.log", "twistd.log.1"):
            self.assertIgnored(path)

    def assertIgnored(self, path: str) -> None:
        """
        Git ignores C{path} in this checkout.
        """
        # In a git worktree, .git is a file.
        if not os.path.exists(os.path.join(ROOT, ".git")) or shutil.which("git") is None:
            raise SkipTest("not a git checkout")
        run(["git", "check-ignore", "-q", path], cwd=ROOT)
