"""kube/errors.py and kube/resources.py: status → class mapping, and URL paths per scope."""

from __future__ import annotations

import pytest

from servicegroup.kube import errors
from servicegroup.kube.resources import DEPLOYMENTS, LEASES, NODES, PODS, crd_resource

STATUS_CASES = [
    (400, "BadRequest", errors.BadRequest),
    (401, "Unauthorized", errors.Unauthorized),
    (403, "Forbidden", errors.Forbidden),
    (404, "NotFound", errors.NotFound),
    (405, "MethodNotAllowed", errors.MethodNotAllowed),
    (409, "AlreadyExists", errors.AlreadyExists),
    (409, "Conflict", errors.Conflict),
    (410, "Expired", errors.Gone),
    (422, "Invalid", errors.Invalid),
    (429, "TooManyRequests", errors.TooManyRequests),
    (500, "InternalError", errors.ServerError),
    (503, "ServiceUnavailable", errors.ServerError),
    (418, "Teapot", errors.ApiError),
]


@pytest.mark.parametrize(
    ("status", "reason", "cls"), STATUS_CASES, ids=[f"{c[0]}-{c[1]}" for c in STATUS_CASES]
)
def test_error_class_by_status_and_reason(status: int, reason: str, cls: type[errors.ApiError]) -> None:
    body = {"kind": "Status", "code": status, "reason": reason, "message": "boom"}
    with pytest.raises(cls) as caught:
        errors.raise_for_status(status, body)
    assert type(caught.value) is cls
    assert (caught.value.status, caught.value.reason, caught.value.message) == (status, reason, "boom")
    assert caught.value.body == body


def test_2xx_does_not_raise() -> None:
    errors.raise_for_status(201, {})


def test_invalid_exposes_causes() -> None:
    body = {"reason": "Invalid", "details": {"causes": [{"field": "spec.x", "reason": "FieldValueRequired"}]}}
    err = errors.error_for(422, body)
    assert isinstance(err, errors.Invalid)
    assert err.causes == [{"field": "spec.x", "reason": "FieldValueRequired"}]


def test_too_many_requests_retry_after_from_header_or_details() -> None:
    from_header = errors.error_for(429, {}, retry_after=7)
    from_details = errors.error_for(429, {"details": {"retryAfterSeconds": 3}})
    assert isinstance(from_header, errors.TooManyRequests)
    assert isinstance(from_details, errors.TooManyRequests)
    assert (from_header.retry_after, from_details.retry_after) == (7, 3)


def test_non_json_body_becomes_the_message() -> None:
    err = errors.error_for(502, "bad gateway")
    assert isinstance(err, errors.ServerError)
    assert err.message == "bad gateway"


class TestResourcePaths:
    def test_core_namespaced(self) -> None:
        assert PODS.path("ns") == "/api/v1/namespaces/ns/pods"
        assert PODS.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
        assert PODS.path() == "/api/v1/pods"
        assert PODS.api_version == "v1"
        assert PODS.list_kind == "PodList"

    def test_group_and_cluster_scoped(self) -> None:
        assert DEPLOYMENTS.path("ns", "d", "scale") == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
        assert NODES.path("ignored", "n1") == "/api/v1/nodes/n1"
        assert LEASES.api_version == "coordination.k8s.io/v1"

    def test_crd_resource(self) -> None:
        grids = crd_resource("superedge.io", "v1", "deploymentgrids", "DeploymentGrid")
        assert grids.path("ns", "g") == "/apis/superedge.io/v1/namespaces/ns/deploymentgrids/g"
        assert str(grids) == "deploymentgrids.superedge.io"
