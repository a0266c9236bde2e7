"""Run ``worker.py`` under ``mpiexec`` from this Python's environment, with a timeout.

The tests skip (never fail) when ``mpi4py`` or that ``mpiexec`` is missing. MPICH's launcher
(Hydra) is given ``-launcher fork`` so that every rank starts on this machine without ssh or
host-name lookups (sandboxes and CI runners have neither); Open MPI's, when it is the one
installed, ``--oversubscribe`` (and ``--allow-run-as-root`` under root).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


@functools.lru_cache(maxsize=None)
def mpiexec_command():
    """``[mpiexec, options...]`` from this environment, or a reason to skip."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "mpi4py is not installed (pip install 'axon_fn[mpi]')"
    bin_dir = os.path.dirname(sys.executable)
    mpiexec = os.path.join(bin_dir, "mpiexec")
    if not os.path.exists(mpiexec):
        return None, f"no mpiexec beside {sys.executable} (pip install 'axon_fn[mpi]')"
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{mpiexec} --version failed: {e}"
    options = []
    if "HYDRA" in version:
        options = ["-launcher", "fork"]
    elif "Open MPI" in version or "OpenRTE" in version:
        options = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    # MPI itself must work here (some containers lack what its network layer needs): a job of
    # two ranks that meet at a barrier; if it cannot run, the tests skip, saying why
    probe = "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"
    try:
        out = subprocess.run([mpiexec, *options, "-n", "2", sys.executable, "-c", probe],
                             capture_output=True, text=True, timeout=60, env=child_env())
    except subprocess.TimeoutExpired:
        return None, "a 2-rank MPI job that only meets at a barrier did not finish in 60 s"
    if out.returncode != 0:
        return None, (f"MPI does not run in this environment ({' '.join(options)}): "
                      f"{(out.stdout + out.stderr).strip()[-300:]}")
    return [mpiexec, *options], None


def child_env():
    """One BLAS thread per rank, this checkout first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               AXON_FN_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(WORKER)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def launch(scenario, out, *, ranks=2, timeout=120):
    """Run the worker's ``scenario`` on ``ranks`` ranks; (return code, output, seconds)."""
    start = time.monotonic()
    code, output = launch_script([WORKER, scenario, str(out)], ranks=ranks, timeout=timeout,
                                 name=scenario)
    return code, output, time.monotonic() - start


def launch_script(arguments, *, ranks=2, timeout=300, name=None):
    """Run a script (``arguments``: its path and options) on ``ranks`` ranks; (return code,
    output). Past ``timeout`` the launcher and every rank it started are killed."""
    command, reason = mpiexec_command()
    if command is None:
        pytest.skip(reason)
    process = subprocess.Popen([*command, "-n", str(ranks), sys.executable, *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=child_env(), start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and every rank it started
        output, _ = process.communicate()
        pytest.fail(f"mpiexec {name or ' '.join(arguments)} did not finish in {timeout} s:\n"
                    f"{output[-4000:]}")
    return process.returncode, output
