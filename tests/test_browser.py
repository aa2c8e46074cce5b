"""
C{--web} in a real browser: Debian's C{chromium}, driven by Playwright's
sync API, against a real C{twistd -n linelogger --chat --web ...} on
127.0.0.1, with a real C{nc} as the terminal user.

Playwright's own browser download is not used: the system chromium is
launched through C{executable_path}.  Without chromium, Playwright or nc
these tests skip, except in CI (C{CI} set), where they fail: there
C{.ci/run} installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from typing import Any, List, Optional

from twisted.trial.unittest import SynchronousTestCase

from .twistd_helpers import LineLogger, assertCleanShutdown, freePort, makeTempDir, waitFor

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
TIMEOUT = 15_000
"""Milliseconds the browser may take for anything (a slow, busy machine)."""

TOKEN = "tail-secret-for-tests"


def chromiumPath() -> Optional[str]:
    """
    The system chromium, or C{None}.
    """
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def require(testCase: SynchronousTestCase, what: str, present: bool) -> None:
    """
    Skip without C{what}, or fail in CI.
    """
    if present:
        return
    if os.environ.get("CI"):
        testCase.fail(f"{what} is missing in CI (.ci/run installs it)")
    testCase.skipTest(f"{what} is not installed")


class Netcat:
    """
    An interactive C{nc 127.0.0.1 PORT}: lines in on its standard input,
    what the server sends collected from its standard output.
    """

    def __init__(self, testCase: SynchronousTestCase, port: int) -> None:
        path = shutil.which("nc")
        require(testCase, "nc (netcat-openbsd)", path is not None)
        assert path is not None
        self.process = subprocess.Popen(
            [path, "127.0.0.1", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.output = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        testCase.addCleanup(self.close)

    def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def lines(self) -> List[str]:
        with self._lock:
            return self.output.decode("utf-8", "replace").split("\r\n")

    def waitFor(self, line: str, timeout: float = 15.0) -> None:
        waitFor(f"nc to receive {line!r}; has {self.lines()!r}", lambda: line in self.lines(), timeout)

    def welcomed(self) -> str:
        """
        Wait for the welcome; return the nickname it gives.
        """
        line = waitFor(
            f"nc to be welcomed; has {self.lines()!r}",
            lambda: next((x for x in self.lines() if x.startswith("* Welcome, ")), None),
            15.0,
        )
        return line[len("* Welcome, ") :].split("!")[0]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def webServer(testCase: SynchronousTestCase, *options: str, webPort: Optional[int] = None) -> LineLogger:
    """
    A chat linelogger with C{--web} on a port of its own (a new one unless
    C{webPort} is given), ready once the web port accepts connections.
    """
    workdir = makeTempDir(testCase)
    tokenFile = os.path.join(workdir, "token")
    with open(tokenFile, "w") as f:
        f.write(TOKEN + "\n")
    for _ in range(5):
        port = webPort or freePort()
        try:
            server = LineLogger(
                testCase,
                "--chat",
                "--web",
                f"tcp:{port}:interface=127.0.0.1",
                "--web-token-file",
                tokenFile,
                *options,
            )
        except AssertionError as e:
            if webPort is None and "Address already in use" in str(e):
                continue
            raise
        server.webPort = port  # type: ignore[attr-defined]
        server.twistd.waitForLog(f"Site starting on {port}")
        return server
    raise AssertionError("no free port for --web in 5 attempts")


class BrowserTestCase(SynchronousTestCase):
    """
    A headless chromium for each test.
    """

    def setUp(self) -> None:
        chromium = chromiumPath()
        require(self, "chromium", chromium is not None)
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            require(self, "playwright (pip install playwright)", False)
        self.playwright = sync_playwright().start()
        self.addCleanup(self.playwright.stop)
        self.browser = self.playwright.chromium.launch(executable_path=chromium, headless=True)
        self.addCleanup(self.browser.close)
        self.dialogs: List[str] = []

    def page(self, server: LineLogger, path: str = "/") -> Any:
        """
        A new page (its own context: its own cookies and storage) at C{path}.
        """
        context = self.browser.new_context(viewport={"width": 900, "height": 700})
        self.addCleanup(context.close)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)

        def onDialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", onDialog)
        page.goto(f"http://127.0.0.1:{server.webPort}{path}")  # type: ignore[attr-defined]
        return page

    def chatPage(self, server: LineLogger) -> Any:
        """
        The chat page, once it is connected and knows who it is.
        """
        page = self.page(server)
        page.wait_for_function("() => document.getElementById('status').textContent.indexOf('connected') >= 0")
        self.waitForMessage(page, "* In #lobby")
        return page

    def nick(self, page: Any) -> str:
        """
        The nickname the server welcomed C{page} with.
        """
        return self.waitForMessage(page, "* Welcome, ")[len("* Welcome, ") :].split("!")[0]

    def messages(self, page: Any) -> List[str]:
        result: List[str] = page.eval_on_selector_all("#messages div", "divs => divs.map(d => d.textContent)")
        return result

    def members(self, page: Any) -> List[str]:
        result: List[str] = page.eval_on_selector_all("#members li", "lis => lis.map(l => l.textContent)")
        return sorted(result)

    def waitForMessage(self, page: Any, start: str) -> str:
        """
        Wait until a line starting with C{start} is shown; return it.
        """
        page.wait_for_function(
            "start => Array.from(document.querySelectorAll('#messages div'))"
            ".some(d => d.textContent.startsWith(start))",
            arg=start,
        )
        return next(m for m in self.messages(page) if m.startswith(start))

    def waitForMembers(self, page: Any, members: List[str]) -> None:
        try:
            page.wait_for_function(
                "wanted => JSON.stringify(Array.from(document.querySelectorAll('#members li'))"
                ".map(l => l.textContent).sort()) === JSON.stringify(wanted)",
                arg=sorted(members),
            )
        except Exception:
            raise AssertionError(f"members {self.members(page)!r}, wanted {sorted(members)!r}") from None

    def say(self, page: Any, text: str) -> None:
        page.fill("#say", text)
        page.press("#say", "Enter")


class ChatPageTests(BrowserTestCase):
    def test_everyDirection(self) -> None:
        """
        Two pages and one nc client in one room: each hears the other two;
        the member lists follow joins, nick changes and leaving.
        """
        server = webServer(self)
        a = self.chatPage(server)
        a.fill("#nick", "alice")
        a.click("#nick-form button")
        self.waitForMessage(a, "* You are now alice.")
        b = self.chatPage(server)
        guestB = self.nick(b)
        self.waitForMessage(a, f"* {guestB} joined")
        self.waitForMembers(a, ["alice (you)", guestB])
        self.waitForMembers(b, ["alice", f"{guestB} (you)"])
        b.fill("#nick", "bob")
        b.click("#nick-form button")
        self.waitForMembers(a, ["alice (you)", "bob"])

        nc = Netcat(self, server.port)
        guestC = nc.welcomed()
        self.waitForMembers(a, ["alice (you)", "bob", guestC])
        nc.send("/nick carol")
        nc.waitFor("* You are now carol.")
        self.waitForMembers(b, ["alice", "bob (you)", "carol"])

        self.say(a, "from alice")
        self.say(b, "from bob")
        nc.send("from carol")
        nc.waitFor("<alice> from alice")
        nc.waitFor("<bob> from bob")
        self.waitForMessage(b, "<alice> from alice")
        self.waitForMessage(a, "<bob> from bob")
        self.waitForMessage(a, "<carol> from carol")
        self.waitForMessage(b, "<carol> from carol")

        nc.send("/quit gone")
        self.waitForMessage(a, "* carol left (gone)")
        self.waitForMembers(a, ["alice (you)", "bob"])
        b.close()
        self.waitForMessage(a, "* bob left")
        self.waitForMembers(a, ["alice (you)"])

        # Each page was recorded with its own peer address, like nc.
        records = server.waitForRecords(1)
        said = {r.split(" ", 2)[2]: r.split(" ", 2)[1] for r in records}
        self.assertEqual(len({said["from alice"], said["from bob"], said["from carol"]}), 3)

    def test_roomsPrivateAndActions(self) -> None:
        """
        The room list joins a room by a click; C{/msg} and C{/me} work as
        over TCP, both ways.
        """
        server = webServer(self)
        page = self.chatPage(server)
        page.fill("#nick", "alice")
        page.click("#nick-form button")
        self.waitForMessage(page, "* You are now alice.")
        nc = Netcat(self, server.port)
        nc.welcomed()
        nc.send("/nick bob")
        nc.send("/join #dev")
        nc.waitFor("* You are now in #dev.")
        page.click("#refresh-rooms")
        page.wait_for_selector("#rooms li:has-text('#dev (1)')")
        page.click("#rooms li:has-text('#dev (1)')")
        self.waitForMessage(page, "* You are now in #dev.")
        self.assertEqual(page.text_content("#room"), "#dev")
        self.waitForMembers(page, ["alice (you)", "bob"])
        nc.waitFor("* alice joined")
        self.say(page, "/me waves")
        nc.waitFor("* alice waves")
        self.say(page, "/msg bob lunch?")
        nc.waitFor("*alice* lunch?")
        self.waitForMessage(page, "-> *bob* lunch?")
        nc.send("/msg alice yes")
        self.assertEqual(self.waitForMessage(page, "*bob* "), "*bob* yes")

    def test_historyForLatePage(self) -> None:
        """
        A page that joins late is shown the room's recent messages.
        """
        server = webServer(self)
        nc = Netcat(self, server.port)
        guest = nc.welcomed()
        for i in range(3):
            nc.send(f"earlier {i}")
        server.waitForRecords(3)
        page = self.chatPage(server)
        self.waitForMessage(page, "* Last 3 messages in #lobby:")
        shown = self.messages(page)
        start = shown.index("* Last 3 messages in #lobby:")
        self.assertEqual(shown[start + 1 : start + 4], [f"<{guest}> earlier {i}" for i in range(3)])

    def test_htmlIsText(self) -> None:
        """
        Markup in a message is shown as text, and nothing in it runs.
        """
        server = webServer(self)
        a = self.chatPage(server)
        b = self.chatPage(server)
        nc = Netcat(self, server.port)
        guestA, guestC = self.nick(a), nc.welcomed()
        evil = "<img src=x onerror=alert(1)>"
        nc.send(evil)
        self.say(a, evil + " again")
        self.waitForMessage(a, f"<{guestC}> {evil}")
        self.waitForMessage(b, f"<{guestC}> {evil}")
        self.waitForMessage(b, f"<{guestA}> {evil} again")
        nc.waitFor(f"<{guestA}> {evil} again")
        time.sleep(0.5)  # an onerror handler would have run by now
        for page in (a, b):
            self.assertEqual(page.eval_on_selector_all("#messages img", "imgs => imgs.length"), 0)
        self.assertEqual(self.dialogs, [])

    def test_reconnect(self) -> None:
        """
        After twistd restarts, the page says it lost the connection, comes
        back by itself, and can talk again.
        """
        server = webServer(self)
        page = self.chatPage(server)
        page.fill("#nick", "alice")
        page.click("#nick-form button")
        self.waitForMessage(page, "* You are now alice.")
        assertCleanShutdown(self, server.stop(), server.log())
        page.wait_for_function("() => document.getElementById('status').textContent.indexOf('disconnected') === 0")
        self.waitForMessage(page, "! Connection lost: reconnecting")
        again = webServer(self, webPort=server.webPort)  # type: ignore[attr-defined]
        page.wait_for_function("() => document.getElementById('status').textContent === 'reconnected'")
        # It takes its nickname back.
        self.waitForMembers(page, ["alice (you)"])
        nc = Netcat(self, again.port)
        self.say(page, "back again")
        nc.waitFor("<alice> back again")

    def test_foreignOrigin(self) -> None:
        """
        A WebSocket opened by another site's page is refused; one from the
        page's own origin is accepted.
        """
        server = webServer(self)
        nc = Netcat(self, server.port)
        nc.welcomed()
        url = f"ws://127.0.0.1:{server.webPort}/ws"  # type: ignore[attr-defined]
        context = self.browser.new_context()
        self.addCleanup(context.close)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        # A page of another origin, served by the browser itself: nothing
        # leaves 127.0.0.1.
        page.route("http://foreign.test/", lambda route: route.fulfill(body="<html><body>elsewhere</body></html>"))
        page.goto("http://foreign.test/")
        probe = """url => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => { resolve('open'); ws.close(); };
            ws.onerror = () => resolve('refused');
        })"""
        self.assertEqual(page.evaluate(probe, url), "refused")
        own = self.page(server, "/static/style.css")
        self.assertEqual(own.evaluate(probe, url), "open")
        # The refused one never became a member: one member joined, and left.
        waitFor("the page's member to leave", lambda: [x for x in nc.lines() if " left " in x], 15.0)
        self.assertEqual(len([x for x in nc.lines() if x.endswith(" joined")]), 1, nc.lines())


class TailPageTests(BrowserTestCase):
    def test_tail(self) -> None:
        """
        Without the token the tail shows nothing (401); with it, a line sent
        by nc appears within a second.
        """
        server = webServer(self)
        base = f"http://127.0.0.1:{server.webPort}"  # type: ignore[attr-defined]
        context = self.browser.new_context()
        self.addCleanup(context.close)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)

        def status(path: str) -> int:
            response = page.goto(base + path)
            assert response is not None
            code: int = response.status
            return code

        self.assertEqual(status("/tail"), 401)
        self.assertEqual(page.eval_on_selector_all("#records", "r => r.length"), 0)
        self.assertEqual(status("/tail?token=wrong"), 401)
        self.assertEqual(status("/tail?token=" + TOKEN), 200)
        page.wait_for_function("() => document.getElementById('status').textContent === 'live'")
        nc = Netcat(self, server.port)
        nc.welcomed()
        sent = time.monotonic()
        nc.send("watch this line")
        page.wait_for_function("() => document.getElementById('records').textContent.indexOf('watch this line') >= 0")
        elapsed = time.monotonic() - sent
        self.assertLess(elapsed, 1.0)
        # The very record the output file has.
        (record,) = [r for r in server.waitForRecords(1) if r.endswith(" watch this line")]
        self.assertIn(record, page.text_content("#records"))

        # Filters and pause work in the page.
        page.fill("#text", "no such text")
        page.wait_for_function("() => document.getElementById('records').textContent === ''")
        page.fill("#text", "")
        page.click("#pause")
        nc.send("while paused")
        page.wait_for_function("() => document.getElementById('counts').textContent.indexOf('paused (1 new)') >= 0")
        self.assertNotIn("while paused", page.text_content("#records"))
        page.click("#pause")
        page.wait_for_function("() => document.getElementById('records').textContent.indexOf('while paused') >= 0")
