"""The vault depends on the store, never the reverse (issue #6, "Layout").

The store package imports nothing of :mod:`crossbeat.vault`, not even inside a
function or under ``TYPE_CHECKING``; ``open_store(url, kek=...)`` still gives a
store whose vault seals personal data, through the keyring the vault registers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from crossbeat.store import StoreError, base, open_store
from crossbeat.vault.kek import Kek
from crossbeat.vault.keys import Vault, require_vault

STORE = Path(__file__).resolve().parents[1] / "crossbeat" / "store"


def _vault_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        if any("vault" in n.split(".") for n in names):
            found.append(f"{path.name}:{node.lineno} {names[0]}")
    return found


def test_no_store_module_imports_the_vault() -> None:
    modules = [p for p in STORE.rglob("*.py") if "migrations" not in p.parts]
    assert len(modules) > 5
    assert [hit for p in modules for hit in _vault_imports(p)] == []


def test_the_import_check_finds_a_vault_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from crossbeat.vault.keys import Vault\n"
        "def f():\n    from crossbeat import vault\n",
        encoding="utf-8",
    )
    assert len(_vault_imports(probe)) == 2


def test_importing_the_store_loads_no_vault_module() -> None:
    code = (
        "import sys, crossbeat.store, crossbeat.store.tags, crossbeat.store.areas\n"
        "print(sorted(m for m in sys.modules if m.startswith('crossbeat.vault')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_open_store_with_a_kek_gets_the_registered_vault(db_url: str, kek: Kek) -> None:
    store = open_store(db_url, kek=kek)
    assert isinstance(store.vault, Vault) and store.vault.kek.id == kek.id
    assert require_vault(store) is store.vault
    assert open_store(db_url).vault is None


def test_open_store_with_a_kek_and_no_keyring_says_what_to_import(
    tmp_path: Path, kek: Kek, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "_KEYRING", None)
    with pytest.raises(StoreError, match="import crossbeat.vault"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}", kek=kek)
