"""Shared fixtures. Tests that need the real clips in ../shared/data/real use
`real_data` and skip cleanly where that folder is absent."""

import os
import pathlib

import pytest

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
