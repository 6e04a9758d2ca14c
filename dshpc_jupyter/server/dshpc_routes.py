"""The later dsHPC's job routes (``isglobal-brge/dsHPC-docker``) as a thin translation onto our model
(docs/design.md section 10.5), so its clients work against this server: ``/query-job`` is one config,
``/submit-meta-job`` a chain (each step's stdout the next one's input file), ``/pipeline/submit`` a DAG of
chains, all run as our pipelines; their ``$ref:prev`` and ``$ref:node/json/path`` strings become references.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..backends.base import Backend
from ..domain.errors import InvalidInputError, NotFoundError
from ..domain.pipeline_models import PipelineDetail, PipelineStep
from .wire import parse_body

PREV = "prev"
#: Their node states, from ours.
NODE_STATES = {"waiting": "waiting", "pending": "running", "running": "running", "completed": "completed",
               "failed": "failed", "cancelled": "cancelled", "error": "failed"}  # fmt: skip


def dshpc_routes(backend: Backend, documented: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["later dsHPC"], responses=documented)

    @router.post("/query-job")
    async def query_job(request: Request) -> Response:
        """One config (``file_hash`` or ``file_inputs`` or neither): 404 when no job can be made for it."""
        config = _object(await parse_body(request, Any), "body")
        result = await backend.simulate_job(config)
        if result.job_id is None:
            raise NotFoundError(result.message)
        job = await backend.get_job(result.job_id)
        return JSONResponse({
            "job_hash": result.job_id, "job_id": result.job_id, "status": job.status, "old_status": result.old_status,
            "output": job.output if job.status == "CD" else None, "output_file_hash": job.output_files.get("@stdout"),
            "output_files": job.output_files, "message": result.message, "function_hash": result.function_hash,
            "outcome": result.outcome,
        })  # fmt: skip

    @router.post("/submit-meta-job")
    async def submit_meta_job(request: Request) -> Response:
        """A chain of methods on one input: each step's stdout is the next step's input file."""
        body = _object(await parse_body(request, Any), "body")
        steps = chain_steps("", body.get("method_chain"), _initial(body), "method_chain")
        for step in steps.values():
            _resolve_nodes(step, {})  # a meta-job knows only $ref:prev
        detail = await backend.submit_pipeline(steps)
        return JSONResponse({"meta_job_hash": detail.pipeline_id, "status": _overall(detail),
                             "estimated_steps": len(steps), "message": "Meta-job submitted"})  # fmt: skip

    @router.get("/meta-job/{meta_job_hash}")
    async def get_meta_job(meta_job_hash: str) -> Response:
        detail = await _found(backend, meta_job_hash, "Meta-job")
        return JSONResponse(meta_job_info(detail))

    @router.post("/pipeline/submit")
    async def submit_pipeline(request: Request) -> Response:
        """``{"nodes": {id: {"chain", "dependencies", "input_file_hash"}}}``: a DAG of chains."""
        body = _object(await parse_body(request, Any), "body")
        detail = await backend.submit_pipeline(node_steps(body.get("nodes")))
        nodes = body["nodes"]
        return JSONResponse({"pipeline_hash": detail.pipeline_id, "status": _overall(detail),
                             "total_nodes": len(nodes), "message": "Pipeline submitted"})  # fmt: skip

    @router.get("/pipeline/{pipeline_hash}")
    async def get_pipeline(pipeline_hash: str) -> Response:
        return JSONResponse(pipeline_info(await _found(backend, pipeline_hash, "Pipeline")))

    @router.delete("/pipeline/{pipeline_hash}")
    async def cancel_pipeline(pipeline_hash: str) -> Response:
        await _found(backend, pipeline_hash, "Pipeline")
        detail = await backend.cancel_pipeline(pipeline_hash)
        return JSONResponse({"pipeline_hash": detail.pipeline_id, "status": "cancelled",
                             "message": "Pipeline cancelled"})  # fmt: skip

    return router


async def _found(backend: Backend, pipeline_id: str, kind: str) -> PipelineDetail:
    try:
        return await backend.pipeline(pipeline_id)
    except NotFoundError:
        raise NotFoundError(f"{kind} {pipeline_id} not found") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: must be a JSON object")
    return value


def _initial(body: dict[str, Any]) -> dict[str, Any]:
    """A meta-job's first input: ``initial_file_hash`` or ``initial_file_inputs`` (exactly one)."""
    file_hash, inputs = body.get("initial_file_hash"), body.get("initial_file_inputs")
    if (file_hash is None) == (inputs is None):
        raise InvalidInputError("initial_file_hash: give it or initial_file_inputs (exactly one of them)")
    return {"file_hash": file_hash} if file_hash is not None else {"file_inputs": inputs}


def chain_steps(prefix: str, chain: Any, first_input: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """A chain as steps ``<prefix>1``, ``<prefix>2``, ...: step 1 on ``first_input``, each later one on its
    predecessor's stdout unless it names its own ``file_inputs`` (where ``$ref:prev`` is that stdout)."""
    if not isinstance(chain, list) or not chain:
        raise InvalidInputError(f"{where}: must be a non-empty array of steps")
    steps: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(chain, start=1):
        item = _object(raw, f"{where}[{index - 1}]")
        name, prev = f"{prefix}{index}", f"{prefix}{index - 1}" if index > 1 else None
        step: dict[str, Any] = {"method_name": item.get("method_name"),
                                "parameters": translate(item.get("parameters") or {}, prev, prefix)}  # fmt: skip
        if item.get("file_inputs") is not None:
            step["file_inputs"] = translate(item["file_inputs"], prev, prefix, file=True)
        elif prev is not None:
            step["file_hash"] = {"$ref": prev}
        else:
            step.update(translate(first_input, None, prefix, file=True))
        steps[name] = step
    return steps


def node_steps(nodes: Any) -> dict[str, dict[str, Any]]:
    """A DAG of chains as steps ``<node>.1``, ...; ``$ref:<node>`` is that node's last step, and a node whose
    first step names no input runs on the stdout of its first dependency (after all of them)."""
    if not isinstance(nodes, dict) or not nodes:
        raise InvalidInputError("nodes: must be a non-empty object from node id to node")
    lasts = {str(n): f"{n}.{len(v.get('chain') or [None])}" for n, v in nodes.items() if isinstance(v, dict)}
    steps: dict[str, dict[str, Any]] = {}
    for node_id, raw in nodes.items():
        node = _object(raw, f"nodes.{node_id}")
        dependencies = node.get("dependencies") or []
        unknown = [d for d in dependencies if d not in lasts]
        if unknown:
            raise InvalidInputError(f"nodes.{node_id}.dependencies: no node {unknown[0]!r}")
        if node.get("input_file_hash") is not None:
            first: dict[str, Any] = {"file_hash": node["input_file_hash"]}
        else:
            first = {"file_hash": f"$ref:{dependencies[0]}"} if dependencies else {}
        chain = node.get("chain")
        part = chain_steps(f"{node_id}.", chain, first, f"nodes.{node_id}.chain")
        for step in part.values():
            _resolve_nodes(step, lasts)
        part[f"{node_id}.1"]["after"] = [lasts[d] for d in dependencies]
        steps.update(part)
    return steps


def translate(value: Any, prev: str | None, prefix: str, *, file: bool = False) -> Any:
    """``$ref:prev`` (the previous step) and ``$ref:<name>[/json/path]`` strings into reference objects: a file
    (stdout) where an input is, a JSON value (at the path) where a parameter is."""
    if isinstance(value, str) and value.startswith("$ref:"):
        target, _, path = value[len("$ref:") :].partition("/")
        step = prev if target == PREV else f"\0node:{target}"
        if step is None:
            raise InvalidInputError(f"{value!r}: the first step of a chain has no previous step")
        if file:
            return {"$ref": step}
        return {"$ref": step, "path": path} if path else {"$ref": step}
    if isinstance(value, dict):
        return {k: translate(v, prev, prefix, file=file) for k, v in value.items()}
    if isinstance(value, list):
        return [translate(v, prev, prefix, file=file) for v in value]
    return value


def _resolve_nodes(value: Any, lasts: dict[str, str]) -> Any:
    """Node names inside references (``$ref:<node>``) become that node's last step."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("\0node:"):
            node = ref[len("\0node:") :]
            if node not in lasts:
                raise InvalidInputError(f"'$ref:{node}': no node {node!r} in the pipeline")
            value["$ref"] = lasts[node]
        for item in value.values():
            _resolve_nodes(item, lasts)
    elif isinstance(value, list):
        for item in value:
            _resolve_nodes(item, lasts)
    return value


def _overall(detail: PipelineDetail) -> str:
    """Their pipeline (and meta-job) status: pending, running, completed, failed or cancelled."""
    stats = detail.statistics
    if stats.failed or stats.error:
        return "failed"
    if stats.done:
        return "cancelled" if stats.cancelled else "completed"
    return "running" if stats.running or stats.completed else "pending"


def _node_state(states: list[str]) -> str:
    """A node's state from its chain's: the first failure or cancel, else running, else all completed."""
    for state in ("failed", "cancelled", "running"):
        if state in states:
            return state
    if set(states) == {"completed"}:
        return "completed"
    return "running" if "completed" in states else "waiting"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def meta_job_info(detail: PipelineDetail) -> dict[str, Any]:
    steps = list(detail.steps.values())
    current = next((i for i, s in enumerate(steps, start=1) if s.state != "completed"), None)
    last = steps[-1]
    error = next((s.reason for s in steps if s.state in ("failed", "error")), None)
    return {
        "meta_job_hash": detail.pipeline_id, "status": _overall(detail),
        "chain": [_chain_step(i, s) for i, s in enumerate(steps, start=1)],
        "current_step": current, "final_job_hash": last.job_id,
        "final_output": last.output if last.state == "completed" else None, "error": error,
        "created_at": _when(detail.created_at),
    }  # fmt: skip


def _chain_step(index: int, step: PipelineStep) -> dict[str, Any]:
    return {"step": index, "method_name": step.method_name, "job_hash": step.job_id, "status": step.status,
            "cached": step.outcome == "cached", "output_hash": step.output_files.get("@stdout")}  # fmt: skip


def pipeline_info(detail: PipelineDetail) -> dict[str, Any]:
    """Their ``PipelineInfo``: one entry per node (the state of its chain), progress counts, the final output."""
    nodes: dict[str, list[PipelineStep]] = {}
    for name, step in detail.steps.items():
        nodes.setdefault(name.rsplit(".", 1)[0], []).append(step)
    infos = []
    for node_id, chain in nodes.items():
        states = [NODE_STATES[s.state] for s in chain]
        state = _node_state(states)
        deps = sorted({d.rsplit(".", 1)[0] for d in chain[0].depends_on} - {node_id})
        error = next((s.reason for s in chain if s.state in ("failed", "error", "cancelled")), None)
        infos.append({"node_id": node_id, "status": state, "dependencies": deps, "error": error,
                      "current_step": sum(s.state == "completed" for s in chain) + 1, "total_steps": len(chain),
                      "output": chain[-1].output})  # fmt: skip
    counted = {s: sum(n["status"] == s for n in infos) for s in ("completed", "failed", "running", "waiting")}
    final = infos[-1] if infos else None
    return {
        "pipeline_hash": detail.pipeline_id, "status": _overall(detail), "nodes": infos,
        "created_at": _when(detail.created_at), "total_nodes": len(infos),
        **{f"{s}_nodes": n for s, n in counted.items()},
        "final_node_id": final and final["node_id"], "final_output": final and final["output"],
    }  # fmt: skip
