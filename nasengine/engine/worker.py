"""What one trial runs on a worker (a Ray Tune trial, or in process when debugging)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from nasengine.errors import error_text


def run_candidate(evaluators: dict[str, Callable], payload: dict, report: Callable[[int, float], None],
                  latency: Callable[[str], float] | None = None) -> dict:
    """What one trial runs on a worker: the evaluator for the payload's ``role`` (``train`` a candidate,
    ``search`` with a supernet) on its genotype text and seed. PNG bytes in the result (``NAME_png``)
    travel back as base64, and so does the cell diagram the payload asks for as ``diagram: (genotype,
    title)``. A payload with ``latency: True`` has the candidate's latency measured here after training
    (``latency``: the search's ``LatencyProbe``) and sent back as ``latency_ms``."""
    result = evaluators[payload.get("role", "train")](payload["genotype"], payload["seed"], report)
    if payload.get("latency") and latency is not None and isinstance(result, dict):
        result["latency_ms"] = latency(str(result.get("genotype") or payload["genotype"]))
    if isinstance(result, dict):
        for key, value in result.items():
            if key.endswith("_png") and isinstance(value, bytes):
                result[key] = base64.b64encode(value).decode("ascii")
    diagram = payload.get("diagram")
    if diagram is not None and isinstance(result, dict):
        try:
            from nasengine.viz import genotype_png

            result["diagram_png"] = base64.b64encode(genotype_png(*diagram)).decode("ascii")
        except Exception as e:  # noqa: BLE001 - the driver reports it once; the trial stands
            result["diagram_error"] = error_text(e)
    return result
