"""templates.py: canary template choice (SuperEdge §2.6) and the template hash (§2.5)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicegroup.api.labels import TEMPLATE_HASH_KEY
from servicegroup.grid.templates import (
    TemplateNotFound,
    Templates,
    fnv1_64,
    template_hash,
    template_name,
    unused_pool_entries,
)

# Go's hash/fnv golden64 vectors for FNV-1 (not 1a).
FNV1_GOLDEN = [
    (b"", 0xCBF29CE484222325),
    (b"a", 0xAF63BD4C8601B7BE),
    (b"ab", 0x08326707B4EB37B8),
    (b"abc", 0xD8DCCA186BAFADCB),
]


@pytest.mark.parametrize(("data", "expected"), FNV1_GOLDEN, ids=repr)
def test_fnv1_64_matches_go(data: bytes, expected: int) -> None:
    assert fnv1_64(data) == expected


def spec(image: str = "echo:1", replicas: int | None = 2, **labels: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "echo"}},
        "template": {
            "metadata": {"labels": {"app": "echo", **labels}},
            "spec": {"containers": [{"name": "echo", "image": image}]},
        },
    }
    if replicas is not None:
        result["replicas"] = replicas
    return result


def test_hash_is_decimal_and_ignores_replicas_and_its_own_label() -> None:
    base = template_hash(spec())
    assert base.isdigit()
    assert template_hash(spec(replicas=7)) == base
    assert template_hash(spec(replicas=None)) == base
    assert template_hash(spec(**{TEMPLATE_HASH_KEY: "123"})) == base


def test_hash_covers_everything_else() -> None:
    base = template_hash(spec())
    assert template_hash(spec(image="echo:2")) != base
    assert template_hash(spec(tier="web")) != base
    assert template_hash({**spec(), "minReadySeconds": 5}) != base


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5), st.integers(-(2**53), 2**53) | st.text(max_size=5), max_size=6
    )
)
def test_hash_does_not_depend_on_key_order(fields: dict[str, Any]) -> None:
    reordered = dict(reversed(list(fields.items())))
    assert template_hash(fields) == template_hash(reordered)


CHOICES = [
    ("listed unit uses its template", {"templates": {"z1": "t1"}, "defaultTemplateName": "t2"}, "z1", "t1"),
    (
        "other unit uses defaultTemplateName",
        {"templates": {"z1": "t1"}, "defaultTemplateName": "t2"},
        "z9",
        "t2",
    ),
    ("no default name means spec.template", {"templates": {"z1": "t1"}}, "z9", "default"),
    ("empty default name means spec.template", {"defaultTemplateName": ""}, "z9", "default"),
    (
        "empty templates value means spec.template",
        {"templates": {"z1": ""}, "defaultTemplateName": "t2"},
        "z1",
        "default",
    ),
]


@pytest.mark.parametrize(
    ("grid_spec", "unit", "expected"), [c[1:] for c in CHOICES], ids=[c[0] for c in CHOICES]
)
def test_template_name(grid_spec: dict[str, Any], unit: str, expected: str) -> None:
    assert template_name(grid_spec, unit) == expected


def test_templates_stamp_the_hash_label_and_hash_each_template_once() -> None:
    grid_spec = {"template": spec(), "templatePool": {"t1": spec(image="echo:2")}, "templates": {"z1": "t1"}}
    templates = Templates(grid_spec)
    chosen = templates.for_unit("z1")
    assert chosen.name == "t1"
    assert chosen.fresh_spec()["template"]["metadata"]["labels"][TEMPLATE_HASH_KEY] == chosen.hash
    assert templates.for_unit("z1") is chosen  # cached: 1,000 units cost one hash per template
    assert templates.for_unit("z2").hash == template_hash(spec())
    assert TEMPLATE_HASH_KEY not in grid_spec["template"]["template"]["metadata"]["labels"]  # input untouched


def test_fresh_specs_are_independent() -> None:
    template = Templates({"template": spec()}).named("default")
    first = template.fresh_spec()
    first["template"]["spec"]["containers"][0]["image"] = "changed"
    assert template.fresh_spec()["template"]["spec"]["containers"][0]["image"] == "echo:1"


def test_unknown_template_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateNotFound, match="'typo' not found in templatePool"):
        Templates({"template": spec(), "templates": {"z1": "typo"}}).for_unit("z1")


UNUSED = [
    (
        "keeps referenced and default",
        {"templatePool": {"a": {}, "b": {}, "c": {}}, "templates": {"z": "a"}, "defaultTemplateName": "b"},
        ["c"],
    ),
    (
        "default name keeps no pool entry",
        {"templatePool": {"default2": {}, "a": {}}, "templates": {"z": "a"}},
        ["default2"],
    ),
    ("nothing to delete", {"templatePool": {"a": {}}, "defaultTemplateName": "a"}, []),
]


@pytest.mark.parametrize(("grid_spec", "expected"), [u[1:] for u in UNUSED], ids=[u[0] for u in UNUSED])
def test_unused_pool_entries(grid_spec: dict[str, Any], expected: list[str]) -> None:
    assert unused_pool_entries(grid_spec) == expected
