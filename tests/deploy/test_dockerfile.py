"""The Dockerfile, checked statically (there is no container engine here): hadolint, plus the rules
the manifests rely on: multi-stage, a pinned slim Python base, no ADD, a numeric non-root USER equal
to the pods' runAsUser, read-only-root friendly, `servicegroup` as the entrypoint, and a build
context (.dockerignore) that holds what the COPY lines need and nothing else."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import DEPLOY, ROOT, render

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def build_args() -> dict[str, str]:
    return dict(arg.split("=", 1) for word, arg in instructions() if word == "ARG" and "=" in arg)


def test_hadolint_passes() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_from_a_pinned_slim_python() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    for args in froms:
        image = args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: build_args()[m.group(1)], image)
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert re.fullmatch(r"3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", tag), (
            f"{image}: not a pinned 3.11 slim tag"
        )


def test_no_add_and_no_remote_sources() -> None:
    words = [word for word, _ in instructions()]
    assert "ADD" not in words
    for word, args in instructions():
        if word == "COPY":
            assert "://" not in args


def test_final_stage_runs_servicegroup_as_the_pods_non_root_user() -> None:
    final = stages()[-1]
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    entrypoint = [json.loads(args) for word, args in final if word == "ENTRYPOINT"]
    assert entrypoint == [["servicegroup"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "servicegroup" in scripts
    for obj in render(DEPLOY / "overlays" / "default"):
        spec = obj.get("spec", {}).get("template", {}).get("spec")
        if spec:
            assert spec["securityContext"]["runAsUser"] == int(uid)
            assert spec["securityContext"]["runAsGroup"] == int(gid)


def test_final_stage_is_read_only_root_friendly() -> None:
    """Nothing is installed or compiled at run time: no RUN in the final stage, bytecode is
    compiled at build time and never written later."""
    final = stages()[-1]
    assert not [args for word, args in final if word == "RUN"]
    env = " ".join(args for word, args in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert any(word == "COPY" and args.startswith("--from=") for word, args in final)
    assert any("compileall" in args for word, args in stages()[0] if word == "RUN")


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here (last match wins, `!` re-adds)."""
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*"):
            result = not negate
    return result


def test_build_context_holds_what_copy_needs_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for word, args in stages()[0]:
        if word == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"
    for unwanted in (".venv", "tests", ".git", "deploy", "bench", "src/servicegroup.egg-info"):
        assert ignored(unwanted, patterns), f"{unwanted} would be sent to the builder"


# -- the build itself, without a container engine ------------------------------------------------

IMAGE_ROOT = "/opt/servicegroup"  # the venv both stages share (checked below)


@pytest.fixture(scope="module")
def built_image_root() -> Iterator[Path]:
    """Run the build stage's COPY and RUN lines for real, with the image's /opt/servicegroup and
    /src moved under a world-readable temporary directory (the final stage runs as another uid)."""
    root = Path(tempfile.mkdtemp(prefix="servicegroup-image-"))
    root.chmod(0o755)
    try:
        workdir = root / "src"
        workdir.mkdir()
        shim = root / "bin"  # `python` of the RUN lines: one the image's uid may execute too
        shim.mkdir()
        (shim / "python").symlink_to(image_python())
        env = {**os.environ, **stage_env(stages()[0]), "PATH": f"{shim}:{os.environ['PATH']}"}
        for word, args in stages()[0]:
            if word == "COPY":
                *sources, target = shlex.split(args)
                for source in sources:
                    copy_into(ROOT / source, workdir / target)
            elif word == "RUN":
                command = args.replace(IMAGE_ROOT, str(root / "opt"))
                done = subprocess.run(
                    command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, check=False
                )
                assert done.returncode == 0, f"RUN {args}\n{done.stdout}{done.stderr}"
        yield root / "opt"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def image_python() -> str:
    """A Python 3.11 whose every directory others may enter (the venv links to it, and the final
    stage runs as a non-root uid): this interpreter, or Debian's when this one is under /root."""
    for candidate in (sys.executable, "/usr/bin/python3.11"):
        real = Path(candidate).resolve()
        if real.exists() and all(d.stat().st_mode & 0o001 for d in real.parents):
            return str(real)
    raise AssertionError("no Python 3.11 that a non-root uid may run (install Debian's python3.11)")


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ENV lines of a stage (`K=V` pairs, no quoting used here), with `$PATH` expanded."""
    pairs = dict(pair.split("=", 1) for word, args in stage if word == "ENV" for pair in args.split())
    return {k: v.replace("$PATH", os.environ["PATH"]) for k, v in pairs.items()}


def copy_into(source: Path, target: Path) -> None:
    """`COPY source target` for a file or a directory (Docker copies a directory's contents)."""
    if source.is_dir():
        shutil.copytree(
            source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    else:
        shutil.copy(source, target if target.suffix or not target.is_dir() else target / source.name)


def run_as_image_user(venv: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The final stage's ENTRYPOINT with its ENV, as its USER when this process may switch to it."""
    final = stages()[-1]
    uid, _, gid = next(args for word, args in final if word == "USER").partition(":")
    env = {k: v.replace(IMAGE_ROOT, str(venv)) for k, v in stage_env(final).items()}
    entrypoint = json.loads(next(args for word, args in final if word == "ENTRYPOINT"))
    as_user: dict[str, Any] = {"user": int(uid), "group": int(gid)} if os.geteuid() == 0 else {}
    return subprocess.run(
        [str(venv / "bin" / entrypoint[0]), *args],
        env={"PATH": env["PATH"], **{k: v for k, v in env.items() if k != "PATH"}},
        cwd="/tmp",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **as_user,
    )


def tree_state(path: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in path.rglob("*")}


@pytest.mark.slow
def test_the_build_stage_installs_a_working_image_that_writes_nothing(built_image_root: Path) -> None:
    """`pip install .` (not editable) carries the package data (examples, the sandbox's schemas),
    and the installed command runs as the image's user without writing into the image."""
    before = tree_state(built_image_root)
    assert run_as_image_user(built_image_root, "--help").returncode == 0
    crds = run_as_image_user(built_image_root, "crds")
    assert crds.returncode == 0 and "kind: CustomResourceDefinition" in crds.stdout, crds.stderr
    preview = run_as_image_user(
        built_image_root, "render", "-f", str(ROOT / "examples" / "01-deploymentgrid.yaml"),
        "--nodes", str(ROOT / "examples" / "00-nodes.yaml"),
    )  # fmt: skip
    assert preview.returncode == 0 and "deploymentgrid-demo-beijing" in preview.stdout, preview.stderr
    assert tree_state(built_image_root) == before, "the image's files changed at run time"
