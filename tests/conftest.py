"""
pytest settings for the suite, which is written for trial.

Trial runs tests inside C{_trial_temp}, so C{TestCase.mktemp()} paths land
there.  Under pytest the same relative paths would land in the source tree;
run the session in a temporary directory instead.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _runInTemporaryDirectory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("trial_temp"))
    try:
        yield
    finally:
        os.chdir(previous)
