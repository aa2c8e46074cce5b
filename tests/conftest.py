"""
pytest settings for the suite, which is written for trial.

Trial runs tests inside C{_trial_temp}, so C{TestCase.mktemp()} paths land
there.  Under pytest the same relative paths would land in the source tree;
run the session in a temporary directory instead.

Tests that drive other processes (a real twistd, a browser, a wheel build,
the benchmark suite) are marked C{process}: whole modules by name, and the
test classes of other modules whose code starts a process.  What they prove
does not depend on the runner, so README's test command runs them under
trial only (C{pytest -m "not process"}); C{pytest -m process} runs them.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Dict, Iterator, List, Optional

import pytest


@pytest.fixture(autouse=True, scope="session")
def _runInTemporaryDirectory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("trial_temp"))
    try:
        yield
    finally:
        os.chdir(previous)


PROCESS_MODULES = re.compile(
    r"^test_(twistd|.*_twistd|tls_proxy|browser|packaging|benchmarks|benchmark_.*|webchat_benchmark)$"
)
"""Test modules whose tests drive other processes."""

STARTS_A_PROCESS = re.compile(r"\b(LineLogger|TwistdProcess|startWithMetrics|twistdCommand|Popen)\(|subprocess\.")
"""What the code of a test class that starts a process says."""

_classes: Dict[type, bool] = {}


def startsProcesses(cls: Optional[type]) -> bool:
    """
    Whether the code of test class C{cls}, or of a class of the suite it
    inherits from, starts another process.
    """
    if cls is None:
        return False
    if cls not in _classes:
        found = False
        for klass in cls.__mro__:
            if klass.__module__.startswith("tests."):
                try:
                    found = found or bool(STARTS_A_PROCESS.search(inspect.getsource(klass)))
                except (OSError, TypeError):
                    pass
        _classes[cls] = found
    return _classes[cls]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "process: drives other processes (twistd, a browser, pip, benchmarks)")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::")[0].rpartition("/")[2].removesuffix(".py")
        if PROCESS_MODULES.match(module) or startsProcesses(getattr(item, "cls", None)):
            item.add_marker(pytest.mark.process)
