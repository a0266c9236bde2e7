"""Containers registered with axon_fn.tree.register_pytree_node are pytrees for grad, jit and the
optimizers, and only for axon_fn (optree's global registry is left alone)."""

import numpy as np
import optree

import axon_fn as ax
from axon_fn import ops, optim


class Params:
    def __init__(self, w, b, tag="layer"):
        self.w, self.b, self.tag = w, b, tag


ax.tree.register_pytree_node(Params, lambda p: ((p.w, p.b), p.tag),
                             lambda tag, children: Params(*children, tag=tag))


def test_grad_jit_and_an_optimizer_see_through_a_registered_container():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([1.0, 0.0])
    p = Params(np.array([0.5, -0.5]), np.array(0.25), tag="linear")

    def loss(p):
        return ops.mean((x @ p.w + p.b - y) ** 2)

    g = ax.grad(loss)(p)
    residual = x @ p.w + p.b - y  # d/dw mean(r^2) = 2/n x^T r; d/db = 2/n sum r
    np.testing.assert_allclose(g.w, 2 / 2 * x.T @ residual)
    np.testing.assert_allclose(g.b, 2 / 2 * residual.sum())
    assert isinstance(g, Params) and g.tag == "linear"

    opt = optim.sgd(0.1)

    @ax.jit
    def step(p, s):
        updates, s = opt.update(ax.grad(loss)(p), s, p)
        return optim.apply_updates(p, updates), s

    s = opt.init(p)
    new, s = step(p, s)
    np.testing.assert_allclose(new.w, p.w - 0.1 * g.w)
    np.testing.assert_allclose(new.b, p.b - 0.1 * g.b)
    again, _ = step(new, s)
    assert step.cache_size() == 1 and isinstance(again, Params) and again.tag == "linear"
    assert [path for path, _ in ax.tree.leaves_with_path({"p": p})] == ["p/0", "p/1"]


def test_the_registration_stays_in_axon_fns_namespace():
    p = Params(np.ones(2), np.zeros(()))
    assert optree.tree_leaves(p) == [p]  # a leaf for everyone else
    assert len(ax.tree.leaves(p)) == 2


def test_save_tree_and_load_tree_keep_a_registered_container(tmp_path):
    tree = {"params": Params(np.arange(3.0), np.float32(2.0), tag=("dense", 3)), "step": 7}
    for name in ("tree.npz", "tree.safetensors") if _has_safetensors() else ("tree.npz",):
        path = tmp_path / name
        ax.save_tree(tree, path)
        for loaded in (ax.load_tree(path), ax.load_tree(path, like=tree)):
            assert isinstance(loaded["params"], Params) and loaded["step"] == 7
            np.testing.assert_array_equal(loaded["params"].w, tree["params"].w)
            assert loaded["params"].b == np.float32(2.0)
            assert loaded["params"].tag == ("dense", 3)


def test_loading_a_registered_container_names_it_when_the_class_is_unknown(tmp_path):
    class Unregistered:
        def __init__(self, a):
            self.a = a

    ax.tree.register_pytree_node(Unregistered, lambda u: ((u.a,), None),
                                 lambda aux, children: Unregistered(*children))
    path = tmp_path / "tree.npz"
    ax.save_tree({"u": Unregistered(np.ones(2))}, path)
    optree.unregister_pytree_node(Unregistered, namespace="axon_fn")
    try:
        ax.load_tree(path)
    except ax.AxonTypeError as err:
        assert "Unregistered" in str(err) and "register_pytree_node" in str(err)
    else:
        raise AssertionError("loading an unregistered container should fail")
    ax.tree.register_pytree_node(Unregistered, lambda u: ((u.a,), None),
                                 lambda aux, children: Unregistered(*children))
    with __import__("pytest").raises(ax.ShapeError, match="a dict"):
        ax.load_tree(path, like={"u": {"a": np.ones(2)}})


def _has_safetensors():
    try:
        import safetensors  # noqa: F401
    except ImportError:
        return False
    return True
