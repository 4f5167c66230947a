"""What a capability's `setup(mgr)` may use of `servicegroup.manager.Manager`.

A structural type, so that the controllers (grid, site, fed) register themselves without importing
the manager that imports them.
"""

from __future__ import annotations

from typing import Any, Protocol

from servicegroup.kube.client import Client
from servicegroup.kube.controller import Controller
from servicegroup.kube.events import EventRecorder
from servicegroup.kube.informer import InformerFactory


class ManagerLike(Protocol):
    """The shared client, informers and recorders, the worker count, the controllers selected by
    `--controllers`, and the hook to hand over a controller to run."""

    client: Client
    informers: InformerFactory
    workers: int
    controller_names: list[str]

    def recorder(self, component: str) -> EventRecorder: ...

    def add_controller(self, controller: Controller[Any]) -> None: ...
