"""The import rules of docs/architecture.md, checked on the source: capabilities build on `kube` and
`api` only (fed may build on grid's pure functions, never the other way round), `kube` and `api`
import no capability, the sandbox shares no code with the client, and only the CLI and the demos
start a sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "servicegroup"
CAPABILITIES = ("grid", "site", "traffic", "dns", "fed", "sandbox")
FOUNDATIONS = ("kube", "api")
EXTRA = {"fed": {"grid"}}  # fed distributes grids with grid's own pure functions
DEMOS = ("demo.py", "demo_config.py")  # each capability's demo assembles a sandbox and a manager


def imported_packages(path: Path) -> set[str]:
    """The `servicegroup.<package>` names a module imports (top level of the package only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {
            name.split(".")[1] for name in names if name.startswith("servicegroup.") and name.count(".")
        }
    return found


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("package", CAPABILITIES)
def test_capabilities_build_on_kube_and_api_only(package: str) -> None:
    allowed = {package, *FOUNDATIONS, *EXTRA.get(package, set())}
    if package == "sandbox":
        allowed -= {"kube"}  # a bug shared by client and server could not show
    for path in modules(package):
        extra = imported_packages(path) - allowed
        if path.name in DEMOS:
            extra -= {"sandbox", "manager"}
        assert not extra, f"{path.relative_to(SRC)} imports servicegroup.{sorted(extra)}"


@pytest.mark.parametrize("package", FOUNDATIONS)
def test_foundations_import_no_capability(package: str) -> None:
    for path in modules(package):
        assert not imported_packages(path) & set(CAPABILITIES), path.relative_to(SRC)


def test_the_rules_see_real_imports() -> None:
    """The checker itself: fed's controller does import grid and kube."""
    assert {"grid", "kube", "api"} <= imported_packages(SRC / "fed" / "controller.py")
