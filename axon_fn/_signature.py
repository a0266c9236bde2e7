"""numpy's signatures for primitives: one declaration, compiled once into the public op.

A primitive registered with ``signature="a, axis=None, dtype=None, out=None, keepdims=False"``
gets a public function with exactly that Python signature, so ``sum(a, 1)``, ``sum(a, axis=1)``
and ``sum(a=a, axis=1)`` all bind the way numpy binds them, checked by Python itself (no
per-call parsing). The leading parameters, as many as the forward ``impl(xp, *arrays, **static)``
takes arrays, are the arrays; the parameters named like ``impl``'s keyword-only settings are
passed on as settings. Of the others:

* ``out`` is refused with a clear error when given (axon_fn is functional: results are new
  arrays);
* ``dtype`` (when ``impl`` takes none) casts the result, which is how numpy's ufuncs read it;
* any other parameter (``order``, ``copy``, ``casting``...) is accepted at numpy's default and
  refused otherwise, naming the op, the argument and the value.

The generated body is the old dispatch spelled out for a fixed arity: plain numpy arrays and
Python scalars go straight to the CPU kernel, anything else to the general ``bind``.
``normalize`` maps a setting to a function that puts it in canonical form (``reshape(a, -1)``
records ``shape=(-1,)``); it runs only off the fast path, where settings are recorded.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.sum(np.ones((2, 3)), 1)
array([3., 3.])
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

__all__ = ["numpy_signature_op", "array_count"]


def array_count(impl):
    """How many arrays ``impl(xp, *arrays, **static)`` takes (None: any number)."""
    params = list(inspect.signature(impl).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _static_names(impl):
    return [p.name for p in inspect.signature(impl).parameters.values() if p.kind is p.KEYWORD_ONLY]


def _literal(value):
    """``value`` as source when the compiled code holds it as one shared constant (None, True,
    False, small ints, identifier-like strings), else None."""
    if value is None or type(value) is bool or (type(value) is int and -5 <= value <= 256):
        return repr(value)
    if type(value) is str and value.isidentifier():
        return repr(value)
    return None


def _default_name(p):
    """How the generated code spells the default of ``p``: a literal when it can (a constant
    load), else its name in the namespace (``_d_axis``)."""
    return _literal(p.default) or f"_d_{p.name}"


def _source_params(params):
    """The parameter list as source, each default spelled by :func:`_default_name`, so that an
    argument left out is its default by identity, which the generated checks test first."""
    parts, kind = [], None
    for p in params:
        if p.kind is p.KEYWORD_ONLY and kind is not p.KEYWORD_ONLY:
            if kind is p.POSITIONAL_ONLY:
                parts.append("/")
            parts.append("*")
        elif kind is p.POSITIONAL_ONLY and p.kind is not p.POSITIONAL_ONLY:
            parts.append("/")
        default = "" if p.default is p.empty else f"={_default_name(p)}"
        parts.append(p.name + default)
        kind = p.kind
    if kind is inspect.Parameter.POSITIONAL_ONLY:
        parts.append("/")
    return ", ".join(parts)


class _Default:
    """Compares a refused setting with its default without asking an array for its truth."""

    @staticmethod
    def differs(value, default):
        if value is default:
            return False
        if isinstance(value, (str, bool, int, float, type(None))):
            return value != default
        return True


def numpy_signature_op(prim, signature, *, fast, bind, explain, refuse, cast, normalize=None,
                       ignore=()):
    """Compile the public op of ``prim`` with the Python signature ``signature``.

    ``fast`` is the set of argument types the fast path takes; ``bind(prim, args, params)`` the
    general dispatch; ``explain(prim, args, params, err)`` turns a kernel failure into a named
    error; ``refuse(name, argument, value, why)`` raises for an unsupported argument; ``cast``
    returns the ``astype`` op (looked up on first use). Parameters named in ``ignore`` take
    any value and have no effect (``astype``'s ``copy``: axon_fn never writes into an array,
    so whether it was copied cannot be observed).
    """
    normalize = dict(normalize or {})
    probe = {}
    exec(f"def probe({signature}): pass", {}, probe)  # noqa: S102 - a trusted, fixed string
    sig = inspect.signature(probe["probe"])
    params = list(sig.parameters.values())
    n = array_count(prim.impl)
    if n is None:
        raise TypeError(f"{prim.name}: a variadic primitive takes no numpy signature")
    arrays = [p.name for p in params[:n]]
    statics = _static_names(prim.impl)
    for name in normalize:
        if name not in statics:
            raise TypeError(f"{prim.name}: normalize names {name!r}, which is not a setting")
    passed = [p.name for p in params[n:] if p.name in statics]
    missing = [s for s in statics if s not in passed]
    lines = []
    defaults = {f"_d_{p.name}": p.default for p in params if p.default is not p.empty}
    for p in params[n:]:
        if p.name in statics or p.name in ignore:
            continue
        if p.name == "out":
            lines.append("    if out is not None:\n"
                         "        _refuse(_name, 'out', out, 'axon_fn ops return new arrays; "
                         "assign the result instead')")
        elif p.name == "dtype":
            call = ", ".join(arrays + [f"{s}={s}" for s in passed])
            lines.append(f"    if dtype is not None:\n        return _cast()(_public({call}), "
                         "dtype=_np.dtype(dtype))")
        else:
            key = _default_name(p)
            lines.append(f"    if {p.name} is not {key} and _differs({p.name}, {key}):\n"
                         f"        _refuse(_name, {p.name!r}, {p.name}, "
                         f"{'only the default ' + repr(p.default) + ' is supported'!r})")
    args_tuple = "(" + "".join(f"{a}, " for a in arrays) + ")"
    kw_call = ", ".join(f"{s}={s}" for s in passed)
    kw_dict = "{" + ", ".join(f"{s!r}: {s}" for s in passed) + "}"
    impl_defaults = {p.name: p.default for p in inspect.signature(prim.impl).parameters.values()
                     if p.kind is p.KEYWORD_ONLY}
    # the settings recorded off the fast path: (name, value source, only when not at default)
    entries = []
    for s in passed:
        value = s
        if s in normalize:
            canonical = getattr(normalize[s], "canonical_types", None)
            value = (f"{s} if type({s}) in _c_{s} else _norm_{s}({s})" if canonical
                     else f"_norm_{s}({s})")
        default = sig.parameters[s].default
        same_default = default is not inspect.Parameter.empty and (
            impl_defaults[s] is default or (type(impl_defaults[s]) is type(default)
                                            and impl_defaults[s] == default))
        entries.append((s, value, same_default))
    if any(conditional for _, _, conditional in entries):
        record = ["    _p = {}"] + [
            (f"    if {s} is not {_default_name(sig.parameters[s])}:\n        _p[{s!r}] = {value}"
             if conditional else f"    _p[{s!r}] = {value}") for s, value, conditional in entries]
    else:  # every setting is recorded: one dict literal
        record = ["    _p = {" + ", ".join(f"{s!r}: {value}" for s, value, _ in entries) + "}"]
    if missing:  # settings numpy's signature does not spell: keyword-only, required
        raise TypeError(f"{prim.name}: signature lacks the settings {missing}")
    test = " and ".join(f"type({a}) in _fast" for a in arrays) or "True"
    call_args = ", ".join(arrays + ([kw_call] if kw_call else []))
    body = "\n".join(lines)
    source = (
        f"def {prim.name}({_source_params(params)}):\n"
        f"{body}\n"
        f"    if {test}:\n"
        f"        try:\n"
        f"            return _prim.cpu({call_args})\n"
        f"        except Exception as err:\n"
        f"            _explain(_prim, {args_tuple}, {kw_dict}, err)\n"
        f"            raise\n"
        + "\n".join(record) + "\n"
        f"    return _bind(_prim, {args_tuple}, _p)\n"
    )
    namespace = {"_prim": prim, "_fast": fast, "_bind": bind, "_explain": explain,
                 "_refuse": refuse, "_cast": cast, "_np": np, "_name": prim.name,
                 "_differs": _Default.differs, **defaults,
                 **{f"_norm_{k}": v for k, v in normalize.items()},
                 **{f"_c_{k}": frozenset(v.canonical_types) for k, v in normalize.items()
                    if getattr(v, "canonical_types", None)}}
    with warnings.catch_warnings():  # `is not 'C'` is meant: identity first, then equality
        warnings.simplefilter("ignore", SyntaxWarning)
        code = compile(source, f"<axon_fn.ops.{prim.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated from the registration's fixed strings
    public = namespace[prim.name]
    namespace["_public"] = public
    public.__signature_source__ = source
    return public
