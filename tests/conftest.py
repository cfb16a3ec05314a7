"""Shared fixtures: the committed Dovecot-made stores, and a fresh store made in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MAKE_FIXTURES = ROOT / "scripts" / "make-fixtures"
FIXTURES_24 = FIXTURES / "dovecot24"  # the same kinds of store, made by Dovecot 2.4
NOT_STORES = ("dumps", "dovecot24")  # top-level entries of FIXTURES that are not 2.3 stores
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_doveadm() -> str:
    """The doveadm binary; in CI its absence is a failure, elsewhere a skip."""
    path = shutil.which("doveadm")
    if path is None:
        if IN_CI:
            pytest.fail("doveadm is not installed, but CI=true requires the Dovecot tests to run")
        pytest.skip("doveadm is not installed (apt-get install dovecot-core)")
    return path


def store_files(root: Path) -> list[Path]:
    """Every regular file of the mailstores under ``root`` (not the dump texts, nor the
    2.4 stores: the formats are the same, one walk over them is enough)."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not set(p.relative_to(root).parts[:1]) & set(NOT_STORES)
    )


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "stores.json").exists():
        pytest.fail("tests/fixtures is missing: run `make fixtures` (needs dovecot-core, root)")
    return FIXTURES


@pytest.fixture(scope="session")
def stores(fixtures_dir: Path) -> list[dict]:
    return json.loads((fixtures_dir / "stores.json").read_text())


@pytest.fixture(scope="session")
def fresh_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mailstore made now by the installed Dovecot, never seen by the committed tests."""
    need_doveadm()
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("scripts/make-fixtures needs root (it creates a mail user)")
        pytest.skip("scripts/make-fixtures needs root (it creates a mail user)")
    out = tmp_path_factory.mktemp("fresh") / "store"
    subprocess.run([str(MAKE_FIXTURES), str(out)], check=True, capture_output=True, timeout=600)
    return out


DOVECOT24_ENV = "DIT_TEST_DOVECOT24"


def need_dovecot24() -> Path:
    """The Dovecot 2.4 chroot (``scripts/setup-dovecot24``); in CI its absence fails."""
    chroot = Path(os.environ.get(DOVECOT24_ENV, "/srv/dc24"))
    reason = None
    if not (chroot / "usr" / "bin" / "doveadm").exists():
        reason = f"no Dovecot 2.4 chroot at {chroot} (run scripts/setup-dovecot24 {chroot})"
    elif os.geteuid() != 0:
        reason = "the Dovecot 2.4 tests run as root (chroot, bind mounts)"
    if reason:
        if IN_CI:
            pytest.fail(f"{reason}, but CI=true requires the Dovecot 2.4 tests")
        pytest.skip(reason)
    return chroot


POSTGRES_ENV = "DIT_TEST_POSTGRES"


def postgres_url() -> str:
    """The PostgreSQL test database (``.ci/run`` starts one); in CI its absence fails."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"{POSTGRES_ENV} is not set, but CI=true requires the PostgreSQL tests")
        pytest.skip(f"no PostgreSQL test database ({POSTGRES_ENV}=postgresql://...)")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger on each backend: a SQLite file, or a wiped PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    url = postgres_url()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url
