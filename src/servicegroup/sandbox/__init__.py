"""The sandbox: an embedded Kubernetes API server for tests and demos."""

from servicegroup.sandbox.server import Sandbox

__all__ = ["Sandbox"]
