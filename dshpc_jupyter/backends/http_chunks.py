"""A ``simulate_jobs`` call sent in chunks under the server's ``max_configs`` (docs/design.md section 4.3).

The first chunk records a batch and the next ones are added to it (``?batch_id=``), so the merged response has
one ``batch_id`` that reopens every config in order, as an unsplit call would. Results are merged in order and
the statistics, which are all counts, summed. (In a chunked *dry run* a config identical to one in an earlier
chunk says "Would submit a new job" rather than "Would share ...", since nothing links dry-run chunks.)

The limit is read once per connection, so a quota lowered meanwhile refuses the next chunk over it (413, nothing
recorded); the limit is then read once more and, when it shrank, the configs not yet recorded are sent again in
chunks under it. Once per call, so a 413 the limit does not explain (a body too large) is not sent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..domain.errors import DshpcError, LimitExceededError
from ..domain.models import BatchStatistics, MultiJobResult, MultiJobSimulationResponse

#: Sends one chunk of configs: ``(configs, batch_id to add them to, fields of the first chunk only)``.
SendChunk = Callable[[list[Any], str | None, dict[str, Any]], Awaitable[MultiJobSimulationResponse]]
#: After a 413: the limit read again, when it is now below the given chunk size (None: it is not).
SmallerLimit = Callable[[int | None], Awaitable[int | None]]


async def send_in_chunks(
    send: SendChunk, items: list[Any], size: int | None, smaller: SmallerLimit, *, batch_id: str | None,
    first: dict[str, Any], dry_run: bool,
) -> MultiJobSimulationResponse:  # fmt: skip
    """``items`` in chunks of ``size`` (None: one call) into ``batch_id`` (None: the batch the first chunk
    records); ``first`` (a new batch's name) goes with the first chunk only. A call that fits in one chunk
    answers the server's response unchanged."""
    results: list[MultiJobResult] = []
    totals = dict.fromkeys((*BatchStatistics.model_fields, "quota_waiting"), 0)  # counts, all summed
    start, reread = 0, False
    while True:
        end = len(items) if size is None else min(len(items), start + size)
        whole = start == 0 and end == len(items)
        try:
            part = await send(items[start:end], batch_id, {} if start else first)
        except DshpcError as exc:
            if isinstance(exc, LimitExceededError) and not reread:
                reread = True
                lowered = await smaller(size)
                if lowered is not None:
                    size = lowered
                    continue
            if not whole:
                exc.add_note(
                    f"configs {start} to {len(items) - 1} of {len(items)} were not submitted"
                    + (f"; batch {batch_id} holds the ones before" if batch_id and start else "")
                )
            raise
        if whole:
            return part
        batch_id = batch_id or part.batch_id
        results.extend(part.results)
        for field in totals:
            totals[field] += getattr(part, field)
        start = end
        if start == len(items):
            return MultiJobSimulationResponse(results=results, batch_id=batch_id, dry_run=dry_run, **totals)
