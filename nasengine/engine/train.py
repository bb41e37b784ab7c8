"""``nasengine train``: one network trained and recorded as a single trial (a paper's final
retraining), through the same trial writer as a search."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from nasengine import storage as st
from nasengine.engine.config import plain
from nasengine.engine.driver import _STANDARD_RESULT_KEYS
from nasengine.engine.prepare import _DATA_KEYS
from nasengine.errors import NasError, error_text
from nasengine.progress import Progress
from nasengine.storage import DEFAULT_STORAGE


def train_one(genotype_text: str, *, space_name: str, dataset: str, epochs: int, preset: str | None = None,
              data_dir: str | None = None, seed: int = 0, storage: str = DEFAULT_STORAGE,
              study_name: str | None = None, network_kwargs: dict | None = None, train: dict | None = None,
              holdout: bool = False, source: dict | None = None, stream: TextIO | None = sys.stderr) -> dict:
    """Train one network and record it as a single trial (the final retraining of a NAS paper).

    By default it trains on train + validation and its value is the test accuracy (``final``);
    ``holdout`` trains on the training split only: value = validation accuracy, ``test_acc`` as well.
    """
    from nasengine.data import prepare_dataset
    from nasengine.engine.evaluators import TrainEvaluator
    from nasengine.spaces.cell import load_space
    from nasengine.zoo.presets import network_settings

    space = load_space(space_name)
    g = space.parse(genotype_text)
    space.to_params(g)  # a genotype the study cannot hold as params: NasError now
    st.check_storage_url(storage)
    if epochs < 1:
        raise NasError(f"epochs must be a positive integer, got {epochs}")
    data = prepare_dataset(dataset, data_dir=data_dir)
    network = dict(network_kwargs or network_settings(space, preset or "digits", dataset_shape=data))
    # image_size stays when it is not the data's: the network's resolution (training resizes the batches)
    macro = {k: v for k, v in network.items() if k not in _DATA_KEYS or (k == "image_size" and v != data["image_size"])}
    train_settings = dict(train or {})
    if holdout:
        train_settings["test"] = True
    evaluator = TrainEvaluator(space=space_name, dataset=dataset, data_dir=data_dir, epochs=epochs, network=macro,
                               train=train_settings, final=not holdout)
    evaluator.config(seed)
    name = study_name or f"train-{Path(space_name).stem}-{dataset}"
    config = plain({"kind": "train", "space": space_name, "dataset": dataset, "preset": preset,
                    "epochs": epochs, "seed": seed, "train": train_settings, "holdout": holdout,
                    "network": network})

    rdb = st.connect(storage, create=True)
    study_id = st.find_study_id(rdb, name)
    if study_id is None:
        attrs = {"config": config, "space": Path(space_name).stem, "algo": "train", "dataset": dataset,
                 "network": plain(network), "kind": "train"}
        study_id = st.create_study(rdb, name, attrs)
    else:
        stored = rdb.get_study_user_attrs(study_id).get("network")
        if stored is not None and plain(stored) != plain(network):
            raise NasError(f"study {name!r} holds networks built with other settings; use another --study-name")
    writer = st.TrialWriter(rdb, study_id, space)
    extra = {"split": "val" if holdout else "test", "epochs": epochs}
    if source:
        extra.update(source_study=source["study"], source_trial=source["trial"])
    note = "train" + (f" from {source['study']} #{source['trial']}" if source else "")
    trial_id, number = writer.start(g, seed=seed, note=note, **extra)
    progress = Progress(epochs, "training", stream=stream, enabled=stream is not None, unit="epochs")
    split = "validation" if holdout else "test"

    def report(step: int, value: float) -> None:
        writer.report(trial_id, step, value)
        progress.set(step, status=f"{split} accuracy {value:.4f}", force=True)

    try:
        with progress:
            result = evaluator(space.format(g), seed, report)
    except KeyboardInterrupt:
        writer.fail(trial_id, {"error": "interrupted (Ctrl-C)"})
        raise
    except Exception as e:  # noqa: BLE001
        import traceback

        writer.fail(trial_id, {"error": error_text(e), "traceback": traceback.format_exc()[-8000:]})
        raise NasError(f"training failed: {error_text(e)}") from None
    value = result["value"]
    extra = {k: result[k] for k in _STANDARD_RESULT_KEYS + ("val_acc", "test_acc") if result.get(k) is not None}
    if isinstance(result.get("weights_pt"), str):  # kept as an artifact, for nasengine export --weights
        import base64

        extra["weights"] = st.attach_weights(rdb, trial_id, base64.b64decode(result["weights_pt"]),
                                             st.default_artifact_dir(storage))
    writer.complete(trial_id, value, extra)
    return {"storage": storage, "study_name": name, "number": number, "value": value,
            "test_acc": result.get("test_acc"), "val_acc": result.get("val_acc"), **extra}
