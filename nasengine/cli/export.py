"""``nasengine export`` (a standalone PyTorch module of a genotype or a study's trial) and
``nasengine params`` (its parameter count and multiply-adds)."""

from __future__ import annotations

import argparse
from typing import Any

from nasengine.cli.args import add_scaling_options, nonnegative_int, positive_int, scaling_overrides
from nasengine.errors import NasError, first_line


def _add_size_options(p: argparse.ArgumentParser) -> None:
    from nasengine.zoo.presets import PRESETS

    p.add_argument("--space", help="search space the genotype text belongs to (default: inferred; published "
                                   "genotypes know theirs)")
    p.add_argument("--preset", choices=PRESETS, help="network size and input: digits (the space's search-time "
                   "network, 1x8x8), cifar10 (the papers' CIFAR-10 networks), imagenet-mobile (224x224, "
                   "<600M mult-adds: the cell networks), nb201, imagenet (the mobile networks of blocks, "
                   "each EfficientNet at its own resolution)")
    p.add_argument("--N", type=positive_int, help="cells per stack (nasnet, nb201 skeletons)")
    p.add_argument("--F", type=positive_int, help="filters of the first stack (nasnet skeleton)")
    p.add_argument("--layers", type=positive_int, help="cells in all (darts skeleton)")
    p.add_argument("--C", type=positive_int, help="channels of the first stage (darts, nb201 skeletons)")
    add_scaling_options(p)
    p.add_argument("--aux", action="store_true",
                   help="attach the auxiliary classifier head (off by default: papers count parameters and "
                        "mult-adds without it, and it only serves training)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a genotype's network as a standalone PyTorch module",
        description="Write a standalone .py file (needs only torch) defining Network() for a genotype, "
                    "from a published name or genotype text at a preset size, or from a study's trial "
                    "with the network it was searched in.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--genotype", metavar="NAME_OR_TEXT",
                        help="a published genotype (nasnet_a, amoebanet_a, pnasnet_5, darts_v1, darts_v2, enas, "
                             "mobilenet_v2, mnasnet_a1, efficientnet_b0 .. efficientnet_b7) or genotype text")
    source.add_argument("--storage", metavar="URL", help="Optuna storage of a study (with --study-name)")
    p.add_argument("--study-name", metavar="NAME", help="the study to export from")
    p.add_argument("--trial", type=nonnegative_int, metavar="N", help="trial number (default: the best trial)")
    _add_size_options(p)
    p.add_argument("--out", required=True, metavar="FILE.py", help="the module to write")
    p.add_argument("--weights", nargs="?", const="", default=None, metavar="STATE_DICT",
                   help="also write weights beside the module (FILE.pt), from this state_dict file; bare "
                        "--weights takes the trial's stored weights (user attr 'weights')")
    p.add_argument("--png", metavar="FILE.png", help="also draw the genotype's cells as a diagram")
    p.set_defaults(func=run_export)

    q = subparsers.add_parser(
        "params", help="parameter count and multiply-adds of a genotype's network",
        description="Build a genotype's network at a preset size and count its parameters (without the "
                    "auxiliary head, as papers do) and multiply-adds of one input (convolutions and "
                    "linear layers).")
    q.add_argument("--genotype", required=True, metavar="NAME_OR_TEXT", help="a published genotype or genotype text")
    _add_size_options(q)
    q.set_defaults(func=run_params)


# ---------------------------------------------------------------------------------------------- helpers


def _overrides(args) -> dict[str, Any]:
    return {"N": args.N, "F": args.F, "layers": args.layers, "C": args.C, **scaling_overrides(args)}


def _set_aux(settings: dict, aux: bool) -> dict:
    """``settings`` with the aux head on only when ``--aux`` is given, whatever the preset or the study
    trained with: an exported network is for inference, and papers count without the head."""
    from nasengine.models.network import skeleton_settings

    if "aux" in skeleton_settings(settings["skeleton"]):
        settings["aux"] = bool(aux)
    elif aux:
        raise NasError(f"the {settings['skeleton']} network has no auxiliary head (--aux)")
    return settings


def _settings_for(args, genotype_text: str) -> tuple[Any, dict, str]:
    from nasengine.zoo.presets import network_settings, published_settings
    from nasengine.zoo.resolve import resolve_text

    r = resolve_text(genotype_text, args.space)
    g, space, published = r.genotype, r.space, r.published
    if args.preset is None:
        raise NasError("--preset is needed with --genotype (digits, cifar10, imagenet-mobile or nb201)")
    if published is not None and args.space is None:
        settings = published_settings(published, args.preset, **_overrides(args))
    else:
        settings = network_settings(space, args.preset, **_overrides(args))
    return g, _set_aux(settings, args.aux), published or space


def _build(g, settings: dict):
    from nasengine.models.network import build_network

    try:
        return build_network(g.to_data(), **settings)
    except ValueError as e:
        raise NasError(f"cannot build the network: {e}") from None


def _describe(settings: dict) -> str:
    shape = f"{settings['in_channels']}x{settings['image_size']}x{settings['image_size']}"
    rest = " ".join(f"{k}={v}" for k, v in settings.items()
                    if k not in ("skeleton", "num_classes", "in_channels", "image_size"))
    return f"{settings['skeleton']} network, {shape} input, {settings['num_classes']} classes: {rest}"


def _load_state_dict(path: str):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError(f"weights file {path!r} does not exist") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise NasError(f"cannot read weights {path!r}: {first_line(e)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise NasError(f"{path!r} holds no state_dict")
    return state


# --------------------------------------------------------------------------------------------- commands


def run_export(args) -> int:
    from nasengine.export import write_module
    from nasengine.models.flops import AUX_PREFIX, count_params

    if args.genotype is not None:
        if args.study_name is not None or args.trial is not None:
            raise NasError("--study-name and --trial go with --storage, not --genotype")
        g, settings, origin = _settings_for(args, args.genotype)
        if args.weights == "":
            raise NasError("bare --weights needs a study trial; with --genotype pass --weights STATE_DICT")
        stored_weights = args.weights
    else:
        if args.study_name is None:
            raise NasError("--storage needs --study-name")
        g, settings, origin, stored_weights = _from_study(args)
    state_dict = _load_state_dict(stored_weights) if stored_weights else None
    dropped = 0
    if state_dict is not None and not settings.get("aux"):
        # weights trained with the aux head: the exported (inference) network has none
        kept = {k: v for k, v in state_dict.items() if not k.startswith(AUX_PREFIX)}
        dropped, state_dict = len(state_dict) - len(kept), kept
    model = _build(g, settings)
    path = write_module(g, settings, args.out, state_dict=state_dict)
    print(f"wrote {path} ({origin}; {_describe(settings)})")
    if state_dict is not None:
        note = f"; {dropped} aux-head tensors left out (pass --aux to keep them)" if dropped else ""
        print(f"wrote {path.with_suffix('.pt')} (weights from {stored_weights}{note})")
    n, n_aux = count_params(model), count_params(model, include_aux=True)
    aux = f"; {n_aux:,} with the aux head" if n_aux != n else ""
    print(f"parameters: {n:,} ({n / 1e6:.2f}M){aux}")
    if args.png:
        from nasengine.viz import draw_genotype

        print(f"wrote {draw_genotype(g, args.png, title=origin, network=settings)}")
    return 0


def _from_study(args):
    from nasengine.spaces.cell import load_space
    from nasengine.zoo.presets import network_settings
    from nasengine.zoo.resolve import resolve_trial, trial_network

    r = resolve_trial(args.storage, args.study_name, args.trial, args.space)
    trial = r.trial
    space = load_space(r.space)
    g = r.genotype
    overrides = _overrides(args)
    if args.preset is not None:
        settings = network_settings(space, args.preset, **overrides)
    else:
        stored = trial_network(r.study_attrs, trial)
        if stored is None or "skeleton" not in stored:
            raise NasError(f"study {args.study_name!r} records no network settings; pass --preset")
        settings = dict(stored)
        extra = {k: v for k, v in overrides.items() if v is not None}
        if extra:
            from nasengine.models.network import skeleton_settings

            allowed = skeleton_settings(settings["skeleton"])
            unknown = sorted(set(extra) - set(allowed))
            if unknown:
                flags = ", ".join("--" + k for k in unknown)
                raise NasError(f"the {settings['skeleton']} network does not take {flags}")
            settings.update(extra)
    settings = _set_aux(settings, args.aux)
    weights = args.weights
    if weights == "":
        weights = trial.user_attrs.get("weights")
        if not weights:
            raise NasError(f"trial {trial.number} stored no weights (user attr 'weights'); "
                           "pass --weights STATE_DICT")
    return g, settings, f"study {args.study_name} trial {trial.number}", weights


def run_params(args) -> int:
    from nasengine.models.flops import count_flops, count_params

    g, settings, origin = _settings_for(args, args.genotype)
    model = _build(g, settings)
    n, n_aux = count_params(model), count_params(model, include_aux=True)
    shape = (settings["in_channels"], settings["image_size"], settings["image_size"])
    flops = count_flops(model, shape)
    print(f"genotype ({origin}): {g}")
    print(_describe(settings))
    aux = f" ({n_aux:,} with the aux head)" if n_aux != n else ""
    print(f"parameters: {n:,} ({n / 1e6:.2f}M) without the aux head{aux}")
    print(f"mult-adds: {flops:,} ({flops / 1e6:.0f}M) for one {'x'.join(map(str, shape))} input")
    paper = _paper_figures(origin, args.preset, settings)
    if paper is not None:
        params, macs, where = paper
        macs_text = f", {macs / 1e6:.0f}M mult-adds" if macs else ""
        print(f"paper: {params / 1e6:.1f}M parameters{macs_text} ({where})")
    return 0


def _paper_figures(origin: str, preset: str, settings: dict):
    """The paper's (params, mult-adds, where) when ``settings`` are that paper's network, else None."""
    from nasengine.zoo.presets import published_settings
    from nasengine.zoo.published import PAPER_FIGURES

    if (origin, preset) not in PAPER_FIGURES:
        return None
    paper = published_settings(origin, preset)
    same = {k: v for k, v in settings.items() if k != "aux"} == {k: v for k, v in paper.items() if k != "aux"}
    return PAPER_FIGURES[(origin, preset)] if same else None
