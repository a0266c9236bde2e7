"""examples/transfer_learning.py: a pretrained, frozen body under a new head."""

from __future__ import annotations

import numpy as np

import axon_fn

from ._load import load_example


def test_pretrained_body_transfers_and_stays_frozen():
    result = load_example("transfer_learning").main(quick=True)
    assert result["task_a_accuracy"] >= 0.7                       # chance is 1/16
    assert result["body_unchanged"] is True
    assert result["pretrained_frozen_body"] >= 0.75               # chance is 1/3
    assert result["pretrained_frozen_body"] > result["random_frozen_body"] + 0.1
    assert result["pretrained_frozen_body"] > result["from_scratch"] + 0.1


def test_freezing_the_body_leaves_only_the_head_trainable():
    example = load_example("transfer_learning")
    model = example.classifier(3, "head_b")
    state = axon_fn.freeze(axon_fn.init(model, key=0), example.BODY)
    assert list(state.trainable) == ["head_b"] and sorted(state.frozen) == example.BODY
    x, z = example.signals(8, seed=0)
    trained = example.train(model, x, example.task_b(z), init_state=state, epochs=2,
                            batch_size=4, learning_rate=0.1)
    for name in example.BODY:
        for param, value in state.frozen[name].items():
            assert np.array_equal(trained.frozen[name][param], value)
    assert not np.array_equal(trained["head_b"]["kernel"], state["head_b"]["kernel"])
