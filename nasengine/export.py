"""Write a genotype's network as one standalone ``.py`` file that needs only torch.

The file holds the source of the ``nasengine/models/`` files the network needs, verbatim (their imports
of each other dropped: those modules import nothing else from nasengine): ``ops.py``, ``cells.py``,
``blocks.py`` and ``network.py`` for a cell network (``network.py`` registers every skeleton), only
``blocks.py`` for a ``mobile`` network. Then the genotype as plain data (and its text form), the
network settings, a ``Network`` class whose defaults are the exported settings (``Network()`` rebuilds
the network; its state_dict keys are the builder's) and ``load_weights()`` for a state_dict saved
beside the file (``<name>.pt``).
"""

from __future__ import annotations

import ast
import pprint
from pathlib import Path
from typing import Any

from nasengine.errors import NasError, first_line

__all__ = ["module_source", "write_module", "SOURCE_MODULES", "source_modules"]

SOURCE_MODULES = ("ops", "cells", "blocks", "network")  # in dependency order
_MODELS = Path(__file__).resolve().parent / "models"


def _strip_imports(source: str) -> str:
    """``source`` without its ``from __future__`` imports and its imports of nasengine."""
    drop: set[int] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if any(n == "__future__" or n == "nasengine" or n.startswith("nasengine.") for n in names):
            drop.update(range(node.lineno, node.end_lineno + 1))
    return "".join(line for i, line in enumerate(source.splitlines(keepends=True), 1) if i not in drop)


def source_modules(skeleton: str) -> tuple[str, ...]:
    """The ``models/`` files an exported ``skeleton`` network needs, in dependency order."""
    return ("blocks",) if skeleton == "mobile" else SOURCE_MODULES


def _genotype_parts(genotype: Any) -> tuple[dict, str]:
    if hasattr(genotype, "to_data"):
        return genotype.to_data(), str(genotype)
    if isinstance(genotype, dict):
        return genotype, ""
    raise NasError(f"cannot export {type(genotype).__name__}: expected a Genotype")


def _literal(value: Any) -> str:
    text = pprint.pformat(value, width=100, sort_dicts=False)
    try:
        if ast.literal_eval(text) != value:
            raise ValueError
    except (ValueError, SyntaxError):
        raise NasError(f"setting {value!r} is not a plain value and cannot be exported") from None
    return text


def module_source(genotype: Any, network_kwargs: dict, weights_name: str | None = None) -> str:
    """The text of the standalone module (see the module docstring)."""
    from nasengine import __version__
    from nasengine.models.network import SKELETONS, skeleton_settings

    data, text = _genotype_parts(genotype)
    settings = dict(network_kwargs)
    skeleton = settings.get("skeleton")
    if skeleton not in SKELETONS:
        raise NasError(f"network settings need a skeleton (one of {', '.join(SKELETONS)}), got {skeleton!r}")
    allowed = skeleton_settings(skeleton)
    unknown = sorted(set(settings) - set(allowed) - {"skeleton", "num_classes", "in_channels", "image_size"})
    if unknown:
        raise NasError(f"the {skeleton} skeleton does not take {', '.join(unknown)}")
    args = {"num_classes": settings.get("num_classes", 10), "in_channels": settings.get("in_channels", 3),
            "image_size": settings.get("image_size", 32)}
    args.update({name: settings.get(name, default) for name, default in allowed.items()})

    modules = source_modules(skeleton)
    if skeleton == "mobile":
        note = "The dropout and drop connect rates are settings (Network(dropout=0.2, drop_connect=0.2)).\n"
    else:
        note = ("In training mode with the aux head on, forward returns (logits, aux_logits). Set\n"
                "``model.drop_path_prob`` for drop path.\n")
    exported = ["Network", "load_weights", *(["build_network"] if "network" in modules else []), "GENOTYPE",
                "GENOTYPE_TEXT", "SETTINGS"]
    parts = [
        f'"""A {skeleton} network exported by nasengine {__version__}: standalone, needs only torch.\n\n'
        f"Genotype: {text or '(plain data)'}\n\n"
        "Usage::\n\n"
        "    model = Network()        # this network, freshly initialised (Network(num_classes=100), ...)\n"
        "    model = load_weights()   # with the weights saved beside this file, if any\n\n"
        f"{note}``python this_file.py`` checks that it builds and runs.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n",
    ]
    for name in modules:
        source = (_MODELS / f"{name}.py").read_text()
        parts.append(f"# {'-' * 30} nasengine/models/{name}.py {'-' * 30}\n")
        parts.append(_strip_imports(source).strip("\n") + "\n\n\n")
    parts.append(f"# {'-' * 30} the exported network {'-' * 30}\n\n")
    parts.append(f"GENOTYPE_TEXT = {text!r}\n\n")
    parts.append(f"GENOTYPE = {_literal(data)}\n\n")
    parts.append(f"SETTINGS = {_literal(settings)}\n\n")
    parts.append(f"WEIGHTS = {weights_name!r}  # state_dict file beside this one, or None\n\n\n")
    signature = ",\n                 ".join(["genotype=None"] + [f"{k}={_literal(v)}" for k, v in args.items()])
    call = ", ".join(f"{k}={k}" for k in args)
    parts.append(
        f"class Network({SKELETONS[skeleton].__name__}):\n"
        f'    """The exported network; the defaults are the exported settings."""\n\n'
        f"    def __init__(self, {signature}):\n"
        f"        super().__init__(GENOTYPE if genotype is None else genotype, {call})\n\n\n"
    )
    parts.append(
        "def load_weights(model=None, path=None, map_location=\"cpu\"):\n"
        '    """``model`` (default ``Network()``) with the state_dict at ``path`` (default: ``WEIGHTS``\n'
        '    beside this file) loaded."""\n'
        "    import os\n"
        "    if path is None:\n"
        "        if WEIGHTS is None:\n"
        "            raise FileNotFoundError(\"no weights were exported with this network\")\n"
        "        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)\n"
        "    model = Network() if model is None else model\n"
        "    model.load_state_dict(torch.load(path, map_location=map_location, weights_only=True))\n"
        "    return model\n\n\n"
        f"__all__ = {exported!r}\n\n\n"
        "if __name__ == \"__main__\":\n"
        "    net = (Network() if WEIGHTS is None else load_weights()).eval()\n"
        "    n_params = sum(p.numel() for k, p in net.named_parameters() if not k.startswith(\"aux_head.\"))\n"
        "    size = SETTINGS.get(\"image_size\", 32)\n"
        "    with torch.no_grad():\n"
        "        out = net(torch.zeros(2, SETTINGS.get(\"in_channels\", 3), size, size))\n"
        "    print(f\"{SETTINGS['skeleton']} network: {n_params} parameters (without the aux head), \"\n"
        "          f\"output {tuple(out.shape)}\")\n"
    )
    return "".join(parts)


def write_module(genotype: Any, network_kwargs: dict, path: str | Path, state_dict: dict | None = None) -> Path:
    """Write the standalone module to ``path`` (and ``state_dict``, when given, to ``path`` with the
    suffix ``.pt``, after checking it fits the network). Returns the module's path."""
    import torch

    from nasengine.models.network import build_network

    path = Path(path)
    if path.suffix != ".py":
        raise NasError(f"the exported module must be a .py file, got {str(path)!r}")
    if not path.stem.isidentifier():
        raise NasError(f"{path.name!r} is not an importable module name (use letters, digits and _)")
    weights_path = path.with_suffix(".pt")
    if state_dict is not None:
        data, _ = _genotype_parts(genotype)
        try:
            model = build_network(data, **network_kwargs)
            model.load_state_dict(state_dict)
        except (ValueError, RuntimeError) as e:
            raise NasError(f"the weights do not fit the network: {first_line(e)}") from None
    source = module_source(genotype, network_kwargs, weights_path.name if state_dict is not None else None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        if state_dict is not None:
            torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, weights_path)
    except OSError as e:
        raise NasError(f"cannot write {path}: {e.strerror or e}") from None
    return path
