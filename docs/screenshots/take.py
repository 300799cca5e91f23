#!/usr/bin/env python3
"""Screenshots of the dashboard, the approvals list, a request page and the wizard at
1366x900 and 390x844, from a running Portcullis with the demo data.

    cargo run &                      # serves http://127.0.0.1:3000 with the demo data
    docs/screenshots/take.py http://127.0.0.1:3000 docs/screenshots/after

Drives Chromium through chromedriver's WebDriver HTTP API (standard library only). alice
asks for break-glass access to two servers through the wizard; bob opens it as an approver.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SIZES = [(1366, 900), (390, 844)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": os.environ.get("CHROME_BIN", "/usr/bin/chromium"),
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--hide-scrollbars", "--window-size=1366,900"],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}").get("value")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def goto(self, url):
        self.s("POST", "/url", {"url": url})

    def find(self, css):
        for _ in range(100):
            try:
                found = self.s("POST", "/element", {"using": "css selector", "value": css})
                return list(found.values())[0]
            except urllib.error.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"no element {css}")

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})
        time.sleep(0.3)

    def fill(self, css, text):
        element = self.find(css)
        self.s("POST", f"/element/{element}/clear", {})
        self.s("POST", f"/element/{element}/value", {"text": text})

    def cdp(self, cmd, params):
        return self.s("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def shoot(self, directory, name):
        for width, height in SIZES:
            self.cdp("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(0.3)
            png = base64.b64decode(self.s("GET", "/screenshot"))
            path = os.path.join(directory, f"{name}-{width}x{height}.png")
            with open(path, "wb") as out:
                out.write(png)
            print(path, len(png))
        self.cdp("Emulation.clearDeviceMetricsOverride", {})

    def quit(self):
        try:
            self.s("DELETE", "")
        finally:
            self.proc.kill()


def login(d, base, user):
    d.goto(f"{base}/login")
    d.fill("#username", user)
    d.fill("#password", "portcullis-demo")
    d.click('form[action="/login"] button[type="submit"]')


def main():
    base, directory = sys.argv[1].rstrip("/"), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    alice = Driver()
    try:
        login(alice, base, "alice")
        alice.goto(f"{base}/wizard")
        alice.fill("#q", "break-glass")
        alice.click("button[value=search]")
        alice.click("input[name=activity]")
        alice.click("button.primary[value=next]")
        alice.shoot(directory, "wizard")
        alice.fill("#q", "lnx-web-0")
        alice.click("button[value=search]")
        alice.click("#resources tbody tr:nth-child(1) input[name=pick]")
        alice.click("#resources tbody tr:nth-child(2) input[name=pick]")
        alice.click("button.primary[value=next]")
        alice.fill("#notes", "Kernel patching on the web tier: rolling restart after the "
                             "update, one node at a time, draining each from the load balancer first")
        alice.click("button.primary[value=next]")
        alice.click("button.primary[value=next]")
        alice.click("button[value=finish]")
        alice.goto(f"{base}/dashboard")
        alice.shoot(directory, "dashboard")
    finally:
        alice.quit()
    bob = Driver()
    try:
        login(bob, base, "bob")
        bob.goto(f"{base}/approvals")
        bob.shoot(directory, "approvals")
        bob.click("#approvals tbody a")
        bob.shoot(directory, "request")
    finally:
        bob.quit()


if __name__ == "__main__":
    main()
