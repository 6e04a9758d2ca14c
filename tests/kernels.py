"""A real Jupyter kernel for tests: run cells, collect everything the kernel publishes, restart it.

Built on jupyter_client (what nbclient and nbval use) rather than nbclient's notebook loop, because the tests
need every iopub message, including widget (comm) messages sent from background threads while another cell
runs, which a notebook executor files under the cell that was running at the time.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class CellResult:
    status: str
    stdout: str
    stderr: str
    #: display_data / execute_result / update_display_data contents, in order.
    displays: list[dict[str, Any]]
    error: dict[str, Any] | None
    messages: list[dict[str, Any]] = field(repr=False)
    #: What the kernel paged (``%magic?`` help goes there, in the reply's payload).
    paged: str = ""

    @property
    def text(self) -> str:
        """Every text/plain shown, joined (displays and results)."""
        return "\n".join(str(d["data"].get("text/plain", "")) for d in self.displays)

    @property
    def html(self) -> str:
        return "\n".join(str(d["data"].get("text/html", "")) for d in self.displays)


class Kernel:
    """A python3 kernel (this interpreter) in ``cwd`` with ``env`` added to the environment."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(cwd / "kernel-ipc"))
        spec = self.manager.kernel_spec
        assert spec is not None, "the python3 kernel spec is missing (install ipykernel)"
        spec.argv[0] = sys.executable
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.env.pop("JPY_PARENT_PID", None)
        self.manager.start_kernel(cwd=str(cwd), env=self.env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        #: Every iopub message seen so far, of every cell (and of none).
        self.messages: list[dict[str, Any]] = []

    def run(self, code: str, timeout: float = 120) -> CellResult:
        """Execute a cell and wait until the kernel is idle again; every iopub message seen meanwhile (of any
        parent: background threads may address another cell) is kept."""
        msg_id = self.client.execute(code, allow_stdin=False)
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell still running after {timeout} s: {code[:80]!r}")
            try:
                message = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            seen.append(message)
            if (
                message["msg_type"] == "status"
                and message["content"]["execution_state"] == "idle"
                and message["parent_header"].get("msg_id") == msg_id
            ):
                break
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        self.messages.extend(seen)
        content = reply["content"]
        mine = [m for m in seen if m["parent_header"].get("msg_id") == msg_id]
        streams = [m["content"] for m in mine if m["msg_type"] == "stream"]
        return CellResult(
            status=content["status"],
            stdout="".join(s["text"] for s in streams if s["name"] == "stdout"),
            stderr="".join(s["text"] for s in streams if s["name"] == "stderr"),
            displays=[
                m["content"] | {"msg_type": m["msg_type"]}
                for m in mine
                if m["msg_type"] in ("display_data", "execute_result", "update_display_data")
            ],
            error=content if content["status"] == "error" else None,
            messages=seen,
            paged="".join(str(p.get("data", {}).get("text/plain", "")) for p in content.get("payload", [])),
        )

    def ok(self, code: str, timeout: float = 120) -> CellResult:
        """Run a cell that must succeed; its failure fails the test with what the kernel said."""
        result = self.run(code, timeout)
        assert result.status == "ok", f"cell failed: {result.error}\nstderr: {result.stderr}\nstdout: {result.stdout}"
        return result

    def value(self, expression: str) -> Any:
        """The value of a Python expression in the kernel (it must be a literal: numbers, strings, lists, dicts)."""
        import ast

        result = self.ok(f"print(repr({expression}))")
        return ast.literal_eval(result.stdout.strip())

    def drain(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Collect iopub messages that arrived outside a cell (e.g. from background threads)."""
        found = []
        while True:
            try:
                found.append(self.client.get_iopub_msg(timeout=wait))
            except queue.Empty:
                break
        self.messages.extend(found)
        return found

    def comm_updates(self) -> list[dict[str, Any]]:
        """The widget state updates seen so far: (comm_id, state) of every ``comm_msg`` with method update."""
        return [
            {"comm_id": m["content"]["comm_id"], **m["content"]["data"]["state"]}
            for m in self.messages
            if m["msg_type"] == "comm_msg" and m["content"].get("data", {}).get("method") == "update"
        ]

    def restart(self) -> None:
        self.manager.restart_kernel(now=True, env=self.env)
        self.client.wait_for_ready(timeout=60)
        self.drain(0.2)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@contextmanager
def dshpc_kernel(cwd: Path, home: Path) -> Iterator[Kernel]:
    """A kernel in ``cwd`` on the store ``home``, with the magics loaded; shut down at exit."""
    kernel = Kernel(cwd, {"DSHPC_HOME": str(home)})
    try:
        kernel.ok("%load_ext dshpc_jupyter\nimport dshpc_jupyter")
        yield kernel
    finally:
        kernel.shutdown()
