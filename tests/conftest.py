"""Shared fixtures. Tests that need the real clips in ../shared/data/real use
`real_data` and skip cleanly where that folder is absent."""

import os
import pathlib
import sys

import pytest

# Compile fast in the test process and the CLI processes it starts, with the flags the training
# subprocesses already use (ckpt_fixture.FAST_XLA_FLAGS): the tests check behaviour, not speed, and
# much of their time is XLA compiling small graphs (the suite: 1096 s -> 918 s, 2026-12-03, the 2-core
# box). Set before anything imports JAX; S2V_TEST_FULL_XLA=1 keeps XLA's defaults. Benchmarks
# (benchmarks/) never get these flags.
if os.environ.get("S2V_TEST_FULL_XLA") != "1" and "jax" not in sys.modules \
        and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    from ckpt_fixture import FAST_XLA_FLAGS  # tests/ is on sys.path (pytest rootdir insertion)

    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + FAST_XLA_FLAGS).strip()

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_REAL = pathlib.Path(os.environ.get("S2V_SHARED_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> pathlib.Path:
    """Path of ../shared/data/real (skips the test where it is absent)."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"real data folder {SHARED_REAL} is absent")
    return SHARED_REAL


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """Tiny generator / v201 / deblur checkpoints trained once per session (tests/ckpt_fixture.py)."""
    import ckpt_fixture  # tests/ is on sys.path (pytest rootdir insertion), as in the test modules
    return ckpt_fixture.tiny_checkpoints(tmp_path_factory)


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Synthetic photo, speech and video files for the inference tests."""
    import ckpt_fixture  # tests/ is on sys.path (pytest rootdir insertion), as in the test modules
    return ckpt_fixture.synthetic_media(tmp_path_factory)


def _have_mediapipe() -> bool:
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


HAVE_FACES = _have_mediapipe()


def _needs_faces(error: BaseException) -> bool:
    """Whether a test failed only because the face tools' extra is not installed."""
    from s2v_jax.errors import MissingDependencyError

    seen, todo = set(), [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, MissingDependencyError) or (isinstance(e, ModuleNotFoundError)
                                                     and (e.name or "").startswith("mediapipe")):
            return True
        todo += [e.__cause__, e.__context__]
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In a core install (no `faces` extra: no mediapipe, e.g. the newest JAX with numpy 2), a test that
    needs to find a face is reported as skipped, saying so, instead of failed; with the extra installed
    nothing changes."""
    outcome = yield
    report = outcome.get_result()
    if HAVE_FACES or call.excinfo is None or not report.failed or not _needs_faces(call.excinfo.value):
        return
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0,
                       "Skipped: needs the face tools (pip install -e \".[faces]\"): mediapipe is not installed")
