"""A real headless Chromium for the status-page tests (installed by
scripts/install-system-deps.sh), shared by every browser test."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

needs_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium and chromedriver are installed by scripts/install-system-deps.sh",
)


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium driver with a throw-away profile (``extra_args`` e.g. a window
    size)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="haltgate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        *extra_args,
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    """Wait for ``condition`` (stale elements retried)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiter = WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])
    return waiter.until(condition)


@contextlib.contextmanager
def served(store: Any, config: Any) -> Iterator[str]:
    """The admin service over ``store`` on a real uvicorn on a free loopback port, in a
    thread; yields the page's URL."""
    from haltgate.server import build_service

    with served_service(build_service(store, config)) as url:
        yield url


@contextlib.contextmanager
def served_service(service: Any) -> Iterator[str]:
    """``service`` (an :class:`~haltgate.server.AdminService`, e.g. over a trading
    process's own manager) on a real uvicorn on a free loopback port, in a thread; yields
    the page's URL."""
    import uvicorn

    from haltgate.server import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(service)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
