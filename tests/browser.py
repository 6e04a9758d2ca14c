"""A real JupyterLab server and a headless Chromium for the browser tests.

JupyterLab runs in its own process on 127.0.0.1 with a token, a temporary root folder and temporary Jupyter
directories (no user settings, no workspace restored), with everything that would reach the network turned off
(news, update checks, the PyPI extension manager). Chromium is Debian's, driven by Playwright's Python package:
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import stop_gracefully

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: User settings: no news or update notifications popping over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}  # fmt: skip


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def page_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?token={self.token}&reset"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells (not run: the browser runs them)."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": source} for source in cells],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


@contextmanager
def jupyterlab(root: Path, state: Path, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[Lab]:
    """JupyterLab serving ``root`` (its own settings, runtime and workspace folders under ``state``); stopped,
    kernels and all, at exit."""
    token = secrets.token_hex(16)
    port = free_port()
    folders = {name: state / name for name in ("config", "data", "runtime", "settings", "workspaces")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, settings in LAB_SETTINGS.items():
        target = folders["settings"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings), encoding="utf-8")
    environment = {
        **os.environ,
        **(env or {}),
        "JUPYTER_CONFIG_DIR": str(folders["config"]),
        "JUPYTER_DATA_DIR": str(folders["data"]),
        "JUPYTER_RUNTIME_DIR": str(folders["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(folders["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"]),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the kernel: this venv
    }
    environment.pop("JPY_PARENT_PID", None)
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI and containers run as root; Jupyter refuses to unless told
        argv.append("--allow-root")
    log = state / "jupyterlab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=root, env=environment, stdout=output, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, process, log)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(lab):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield lab
    finally:
        stop_gracefully(process)  # SIGTERM: Jupyter shuts its kernels down first


def _answers(lab: Lab) -> bool:
    try:
        return httpx.get(f"{lab.url}/api/status", params={"token": lab.token}, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def chromium(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A page in headless Debian Chromium (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


SECONDS = 1000  # Playwright counts in milliseconds
APP_READY = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return Boolean(panel && panel.context && panel.context.isReady && panel.sessionContext
                   && panel.sessionContext.session && panel.sessionContext.session.kernel);
}"""


def open_and_run_all(page: Any, lab: Lab, notebook: str) -> list[str]:
    """Open a notebook, wait for its kernel, hide the file browser and start running every cell; the list
    collects the page's JavaScript errors from then on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(lab.page_url(notebook))
    page.wait_for_function(APP_READY, timeout=90 * SECONDS)
    page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
    # not awaited: the command's promise resolves only when every cell has run
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return errors


def keep_screenshot(shot: Path, variable: str) -> None:
    """Check a screenshot has content, and copy it where ``$variable`` says (how docs/images/ are made)."""
    assert shot.stat().st_size > 10_000, f"{shot} is (nearly) empty"
    target = os.environ.get(variable)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
