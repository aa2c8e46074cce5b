"""
Tests for L{logger_service.redis.connection}: C{--redis} URLs and their checks.
"""

from __future__ import annotations

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from logger_service.redis.connection import checkRedisURL
from logger_service.tap import Options


class URLTests(SynchronousTestCase):
    """
    C{--redis} takes redis://, rediss:// and unix:// URLs, and nothing else.
    """

    def test_good(self) -> None:
        """
        The documented forms are accepted.
        """
        for url in (
            "redis://127.0.0.1",
            "redis://:secret@127.0.0.1:6380/2",
            "rediss://redis.example:6390",
            "unix:///run/redis/redis.sock",
            "unix:///run/redis/redis.sock?db=3",
        ):
            checkRedisURL(url)

    def test_bad(self) -> None:
        """
        Other schemes, bad ports and bad database numbers are refused with a
        message naming the option.
        """
        for url in ("http://127.0.0.1", "127.0.0.1:6379", "redis://127.0.0.1:99999", "redis://127.0.0.1/x"):
            with self.assertRaises(ValueError) as caught:
                checkRedisURL(url)
            self.assertIn("--redis", str(caught.exception))

    def test_options(self) -> None:
        """
        C{--redis} needs C{--chat}, and a good URL; C{--redis-prefix}
        defaults to C{linelogger}.
        """
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--redis", "redis://127.0.0.1"])
        self.assertIn("needs --chat", str(caught.exception))
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--chat", "--redis", "http://x"])
        options = Options()
        options.parseOptions(["--chat", "--redis", "redis://127.0.0.1:6380"])
        self.assertEqual((options["redis"], options["redis-prefix"]), ("redis://127.0.0.1:6380", "linelogger"))

    def test_withoutTheExtra(self) -> None:
        """
        Without txredisapi, C{--redis} is one clear usage error.
        """
        import sys

        saved = {name: sys.modules.get(name) for name in ("txredisapi", "logger_service.redis.connection")}

        def restore() -> None:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module

        self.addCleanup(restore)
        sys.modules["txredisapi"] = None  # type: ignore[assignment]
        sys.modules.pop("logger_service.redis.connection", None)
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--chat", "--redis", "redis://127.0.0.1"])
        self.assertIn("pip install 'linelogger[redis]'", str(caught.exception))
