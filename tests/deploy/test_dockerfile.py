"""The Dockerfile, checked statically (there is no container engine here): hadolint, plus the rules
the manifests rely on: multi-stage, a pinned slim Python base, no ADD, a numeric non-root USER equal
to the pods' runAsUser, read-only-root friendly, `servicegroup` as the entrypoint, and a build
context (.dockerignore) that holds what the COPY lines need and nothing else."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

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
