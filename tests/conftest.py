"""
pytest settings for the suite, which is written for trial.

Trial runs tests inside C{_trial_temp}, so C{TestCase.mktemp()} paths land
there.  Under pytest the same relative paths would land in the source tree;
run the session in a temporary directory instead.

Modules whose tests drive other processes (a real twistd, a browser, a
wheel build, the benchmark suite) are marked C{process}: what they prove
does not depend on the runner, so README's test command runs them under
trial only (C{pytest -m "not process"}); C{pytest -m process} runs them.
"""

from __future__ import annotations

import os
import re
from typing import Iterator, List

import pytest


@pytest.fixture(autouse=True, scope="session")
def _runInTemporaryDirectory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("trial_temp"))
    try:
        yield
    finally:
        os.chdir(previous)


PROCESS_MODULES = re.compile(r"^test_(.*_twistd|browser|packaging|benchmarks|benchmark_.*|webchat_benchmark)$")
"""Test modules whose tests drive other processes."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "process: drives other processes (twistd, a browser, pip, benchmarks)")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        if PROCESS_MODULES.match(item.nodeid.split("::")[0].rpartition("/")[2].removesuffix(".py")):
            item.add_marker(pytest.mark.process)
