"""What one trial runs on a worker (a Ray Tune trial, or in process when debugging)."""

from __future__ import annotations

import base64
from typing import Callable

from nasengine.errors import error_text


def run_candidate(evaluator: Callable, payload: dict, report: Callable[[int, float], None]) -> dict:
    """What one trial runs on a worker: the evaluator on the payload's genotype text and seed, then (when
    the payload asks, as ``diagram: (genotype, title)``) the cell diagram, as base64 PNG in the result."""
    result = evaluator(payload["genotype"], payload["seed"], report)
    diagram = payload.get("diagram")
    if diagram is not None and isinstance(result, dict):
        try:
            from nasengine.viz import genotype_png

            result["diagram_png"] = base64.b64encode(genotype_png(*diagram)).decode("ascii")
        except Exception as e:  # noqa: BLE001 - the driver reports it once; the trial stands
            result["diagram_error"] = error_text(e)
    return result
