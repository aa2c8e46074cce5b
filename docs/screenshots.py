"""
Make docs/web-chat.png and docs/web-tail.png: the --web pages in a real
browser (the system chromium, driven by Playwright), against a real twistd
on 127.0.0.1, with a short conversation between two pages and two TCP clients.

    $ .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.twistd_helpers import freePort, twistdCommand, twistdEnvironment, waitFor  # noqa: E402


def main() -> None:
    work = tempfile.mkdtemp(prefix="linelogger-shots-")
    chatPort, webPort = freePort(), freePort()
    with open(os.path.join(work, "token"), "w") as f:
        f.write("example-token\n")
    args = ["-n", "--pidfile=", "linelogger", "--chat", "--port", f"tcp:{chatPort}:interface=127.0.0.1"]
    args += ["--web", f"tcp:{webPort}:interface=127.0.0.1", "--web-token-file", "token", "--output", "records.out"]
    with open(os.path.join(work, "twistd.log"), "wb") as log:
        twistd = subprocess.Popen(twistdCommand(*args), cwd=work, env=twistdEnvironment(), stdout=log, stderr=log)
    try:
        waitFor("twistd", lambda: "Site starting" in open(os.path.join(work, "twistd.log")).read(), 20)
        base = f"http://127.0.0.1:{webPort}"
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True)
            tail = browser.new_page(viewport={"width": 900, "height": 420})
            tail.goto(base + "/tail?token=example-token")
            alice = browser.new_page(viewport={"width": 900, "height": 520})
            alice.goto(base + "/")
            alice.wait_for_selector("#members li")
            alice.fill("#nick", "alice")
            alice.click("#nick-form button")
            bob = socket.create_connection(("127.0.0.1", chatPort))
            bob.sendall(b"/nick bob\n")
            time.sleep(0.3)
            phone = browser.new_page(viewport={"width": 390, "height": 700})
            phone.goto(base + "/")
            phone.wait_for_selector("#members li")
            phone.fill("#nick", "carol")
            phone.click("#nick-form button")
            time.sleep(0.3)
            for who, line in [
                (bob, b"morning! deploy went out at 09:12\n"),
                (alice, "thanks bob, the collector looks quiet"),
                (phone, "on my phone: all green here"),
                (bob, b"/me pours coffee\n"),
                (alice, "<b>markup</b> stays text"),
            ]:
                if isinstance(who, socket.socket):
                    who.sendall(line)  # type: ignore[arg-type]
                else:
                    who.fill("#say", line)  # type: ignore[arg-type]
                    who.press("#say", "Enter")
                time.sleep(0.6)
            alice.click("#refresh-rooms")
            time.sleep(0.5)
            alice.screenshot(path=os.path.join(HERE, "web-chat.png"))
            phone.screenshot(path=os.path.join(HERE, "web-chat-phone.png"))
            tail.fill("#peer", "127.0.0.1")
            time.sleep(0.3)
            tail.screenshot(path=os.path.join(HERE, "web-tail.png"))
            bob.close()
            browser.close()
    finally:
        twistd.terminate()
        twistd.wait(20)
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
