"""The Loop: events, filters, halting, metrics and resuming."""

import numpy as np
import pytest

from axon_fn import AxonTypeError, InvalidArgumentError
from axon_fn.loop import filters
from axon_fn.loop.core import EVENTS, Loop, State


def summing_loop():
    return Loop(step_fn=lambda batch, total: total + batch, init_fn=lambda init: init or 0)


def recorder(loop, log, events=EVENTS, filter="always"):
    for event in events:
        def handler(state, event=event):
            log.append((event, state.epoch, state.iteration))
            return "continue", state
        loop = loop.handle(event, handler, filter)
    return loop


def test_every_event_fires_in_order():
    log = []
    final = recorder(summing_loop(), log).run([1, 2], epochs=2)
    assert [e for e, _, _ in log] == [
        "started",
        "epoch_started", "iteration_started", "iteration_completed", "iteration_started",
        "iteration_completed", "epoch_completed",
        "epoch_started", "iteration_started", "iteration_completed", "iteration_started",
        "iteration_completed", "epoch_completed",
        "completed"]
    assert final.step_state == 6 and final.epoch == 2 and final.total_iterations == 4
    assert final.status == "completed"
    assert final.event_counts == {"started": 1, "epoch_started": 2, "iteration_started": 4,
                                  "iteration_completed": 4, "epoch_completed": 2,
                                  "completed": 1}
    assert len(final.times["epochs"]) == 2 and final.times["total"] >= 0


def test_counts_without_iteration_handlers_match_those_with_them():
    """Without a handler on either iteration event the loop counts both with each step; the
    counts, as an epoch handler and the final state see them, are the same."""
    def counted(loop):
        seen = []
        loop = loop.handle("epoch_completed", lambda s: (
            "continue", seen.append((dict(s.event_counts), dict(s.epoch_event_counts))) or s))
        return loop.run([1, 2, 3], epochs=2), seen

    quiet, quiet_seen = counted(summing_loop())
    loud, loud_seen = counted(summing_loop().handle("iteration_started",
                                                    lambda s: ("continue", s)))
    assert quiet_seen == loud_seen and quiet.event_counts == loud.event_counts
    assert quiet_seen[1][0]["iteration_completed"] == 6
    assert quiet_seen[1][1]["iteration_started"] == 3
    assert quiet.step_state == loud.step_state == 12 and quiet.total_iterations == 6


def test_halt_epoch_fires_epoch_halted_and_goes_on():
    log = []
    loop = recorder(summing_loop(), log, ("epoch_halted", "epoch_completed", "completed"))
    loop = loop.handle("iteration_completed", lambda s: ("halt_epoch", s), filters.once(2))
    final = loop.run([1, 2, 3], epochs=2)
    assert [e for e, _, _ in log] == ["epoch_halted", "epoch_completed", "completed"]
    assert final.step_state == 1 + 2 + 1 + 2 + 3 and final.status == "completed"


def test_halt_loop_fires_halted_not_completed():
    log = []
    loop = recorder(summing_loop(), log, ("epoch_completed", "halted", "completed"))
    loop = loop.handle("iteration_completed", lambda s: ("halt_loop", s),
                       lambda s: s.step_state >= 3)
    final = loop.run([1, 2, 3], epochs=5)
    assert [e for e, _, _ in log] == ["halted"]
    assert final.status == "halted" and final.step_state == 3 and final.epoch == 0


def test_handler_can_change_the_state():
    loop = summing_loop().handle("epoch_started", lambda s: ("continue",
                                                            s.replace(step_state=100)))
    assert loop.run([1], epochs=1).step_state == 101


@pytest.mark.parametrize("spec, expected", [
    ("always", [1, 2, 3, 4, 5, 6]),
    ("first", [1]),
    ({"every": 2}, [2, 4, 6]),
    ({"before": 3}, [1, 2]),
    ({"after": 4}, [5, 6]),
    ({"once": 5}, [5]),
    ({"every": 2, "within_epoch": True}, [2, 5]),
    (filters.first(within_epoch=True), [1, 4]),
    (lambda state: state.step_state % 3 == 0, [2, 3, 5, 6]),
])
def test_filters_count_in_total_or_within_the_epoch(spec, expected):
    seen = []
    loop = summing_loop().handle(
        "iteration_completed", lambda s: (seen.append(s.total_iterations), ("continue", s))[1],
        spec)
    loop.run([1, 2, 3], epochs=2)
    assert seen == expected


def test_bad_handler_results_and_arguments_are_errors():
    loop = summing_loop().handle("epoch_completed", lambda s: "stop", name="my_handler")
    with pytest.raises(AxonTypeError, match="handler 'my_handler' on event 'epoch_completed'"):
        loop.run([1])
    with pytest.raises(InvalidArgumentError, match="unknown event 'epoch_done'"):
        summing_loop().handle("epoch_done", lambda s: ("continue", s))
    with pytest.raises(AxonTypeError, match="`filter` must be"):
        summing_loop().handle("started", lambda s: ("continue", s), filter=3)
    with pytest.raises(InvalidArgumentError, match="filter dict needs one of"):
        summing_loop().handle("started", lambda s: ("continue", s), filter={"each": 2})
    with pytest.raises(InvalidArgumentError, match="`n` must be a positive int"):
        filters.every(0)


def test_empty_data_and_one_shot_generators_are_clear_errors():
    with pytest.raises(InvalidArgumentError, match="epoch 0 had no batches"):
        summing_loop().run([])
    gen = (i for i in [1, 2])
    with pytest.raises(InvalidArgumentError, match="epoch 1 had no batches.*generator"):
        summing_loop().run(gen, epochs=2)
    with pytest.raises(AxonTypeError, match="`data` must be an iterable"):
        summing_loop().run(5)


def test_data_function_iterations_and_resume():
    calls = []

    def data(epoch):
        calls.append(epoch)
        return range(10)

    final = summing_loop().run(data, epochs=2, iterations=3)
    assert calls == [0, 1] and final.step_state == 2 * (0 + 1 + 2)
    first = summing_loop().run(data, epochs=1, iterations=3)
    resumed = summing_loop().run(data, epochs=2, iterations=3, state=first)
    assert resumed.step_state == final.step_state and resumed.epoch == 2
    assert resumed.total_iterations == 6 and len(resumed.history) == 2


def test_metrics_average_sum_custom_and_counts():
    batches = [(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.2])),   # tp 1, fp 1, fn 1
               (np.array([1, 1, 0, 0]), np.array([0.9, 0.9, 0.1, 0.1]))]  # tp 2, tn 2
    loop = (Loop(lambda batch, _: batch)
            .metric("accuracy")
            .metric("precision").metric("recall").metric("f1")
            .metric("true_positives")
            .metric(lambda y, p: float(len(y)), "count", accumulate="running_sum")
            .metric(lambda y, p: float(len(y)), "largest",
                    accumulate=lambda acc, v, i: v if acc is None else max(acc, v)))
    final = loop.run(batches)
    (history,) = final.history
    assert history["accuracy"] == pytest.approx(5 / 7)  # over the 7 examples, not (1/3 + 1) / 2
    assert history["precision"] == pytest.approx(3 / 4)  # from counts, not (1/2 + 1) / 2
    assert history["recall"] == pytest.approx(3 / 4)
    assert history["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert history["true_positives"] == 3.0 and history["count"] == 7.0
    assert history["largest"] == 4.0
    with pytest.raises(InvalidArgumentError, match="unknown metric 'acuracy'"):
        Loop(lambda b, s: b).metric("acuracy")
    with pytest.raises(InvalidArgumentError, match="already tracked"):
        Loop(lambda b, s: b).metric("f1").metric("f1")
    with pytest.raises(AxonTypeError, match="metric 'bad': each step must give a number"):
        Loop(lambda b, s: b).metric(lambda y, p: "x", "bad").run(batches)


def test_state_is_immutable():
    state = State()
    with pytest.raises(Exception):
        state.epoch = 3
    assert state.replace(epoch=3).epoch == 3 and state.epoch == 0


def test_metric_spec_options_namedtuple_inputs_and_count_accumulators():
    from typing import NamedTuple

    from axon_fn.loop import MetricSpec

    loop = Loop(lambda b, s: b, lambda _: None)
    spec = MetricSpec("v", lambda v: v)
    final = loop.metric(spec, transform=lambda s: 100.0, accumulate="running_sum").run([1.0, 3.0])
    assert final.history == [{"v": 200.0}]

    class Pair(NamedTuple):
        a: float
        b: float
    got = loop.metric(lambda pair: pair.a - pair.b, "gap").run([Pair(3.0, 1.0)]).history
    assert got == [{"gap": 2.0}]
    with pytest.raises(InvalidArgumentError, match="'precision' accumulates counts"):
        loop.metric("precision", accumulate="running_sum")


def test_predicate_filters_with_optional_arguments():
    seen = []

    def late(state, after=2):
        return state.iteration > after
    loop = Loop(lambda b, s: b, lambda _: None).handle(
        "iteration_completed", lambda s: (seen.append(s.iteration), ("continue", s))[1], late)
    loop.run([1, 2, 3, 4])
    assert seen == [3, 4]
