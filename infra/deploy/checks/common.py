"""Helpers shared by the deploy checks (run by infra/deploy/test.sh).

Every check prints what it does on stderr, and fails by raising `Failed`
with a message that says what was expected: nothing is skipped.
"""
import os
import signal
import subprocess
import sys
import time

import requests

TEST_PASSWORD = "correct-horse-battery-staple"


class Failed(Exception):
    """A deploy check found something wrong."""


def say(msg):
    print(f"deploy: {msg}", file=sys.stderr, flush=True)


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise Failed(f"{name} is not set: run the checks through infra/deploy/test.sh")
    return value


def run(cmd, *, input=None, env_extra=None, check_rc=True, quiet=False):
    """Run a command; return (rc, stdout). Its output is shown unless quiet."""
    cmd_env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run(cmd, input=input, env=cmd_env, capture_output=True, text=True)
    if not quiet or (check_rc and proc.returncode != 0):
        out = (proc.stdout + proc.stderr).strip()
        if out:
            print(out, file=sys.stderr, flush=True)
    if check_rc and proc.returncode != 0:
        raise Failed(f"`{' '.join(cmd)}` exited {proc.returncode}")
    return proc.returncode, proc.stdout


def wait_ok(url, *, timeout=60, alive=None):
    """Poll `url` until it answers 200; `alive()` False means give up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise Failed(f"the service exited before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise Failed(f"{url} did not answer 200 within {timeout}s")


def login(base, username, password=TEST_PASSWORD):
    """POST /login as JSON; returns the cookies the service set."""
    r = requests.post(
        f"{base}/login",
        json={"username": username, "password": password},
        timeout=10,
    )
    check(r.status_code == 200, f"POST /login answered {r.status_code}: {r.text[:200]}")
    cookies = {c.name: c.value for c in r.cookies}
    check(
        any("session" in name for name in cookies),
        f"POST /login set no session cookie (got {sorted(cookies)})",
    )
    return cookies


def whoami(base, cookies):
    """GET /session with `cookies`: (status, body)."""
    r = requests.get(f"{base}/session", cookies=cookies, timeout=10)
    try:
        body = r.json()
    except ValueError:
        body = {}
    return r.status_code, body


class Service:
    """`session-bridge serve` on the host, stopped with SIGTERM."""

    def __init__(self, cmd, *, log_path, env_extra=None, cwd=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, **(env_extra or {})),
            cwd=cwd,
        )

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, then the exit status (SIGKILL after `timeout`)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def tail(self, n=20):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-n:])
