"""`servicegroup manager`: the cloud-side controllers in one process.

One Client, one InformerFactory, one health/metrics server and (optionally) one Lease election
for every selected controller, as kube-controller-manager does. Each controller module in
`CONTROLLERS` exposes `setup(mgr: Manager) -> None`, which asks `mgr.informers` for informers and
calls `mgr.add_controller(...)`.

With leader election, informers start at once (warm caches make failover fast) but controllers
run only while this replica holds the lease, and are cancelled the moment it is lost; the manager
then ends (the CLI exits 1 so Kubernetes restarts the pod, as client-go controllers do). SIGTERM
stops gracefully: controllers drain for a bounded time, then the lease is released.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import socket
import uuid
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, Final

from servicegroup.kube.client import Client
from servicegroup.kube.cmdline import connect
from servicegroup.kube.controller import Controller
from servicegroup.kube.events import EventRecorder
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.leader import LeaderElector
from servicegroup.kube.logs import add_logging_arguments, setup_logging_from_args
from servicegroup.kube.serve import Check, HealthServer

log = logging.getLogger(__name__)

CONTROLLERS: Final[dict[str, str]] = {
    "grid": "servicegroup.grid.controller",
    "site": "servicegroup.site.controller",
    "fed": "servicegroup.fed.controller",
    "secretgrid": "servicegroup.grid.secretgrid",
}
# What one cluster needs. `fed` belongs to a control cluster only, and `secretgrid` needs
# cluster-wide Secret rights that no other controller has (docs/install.md#rbac): both opt-in.
DEFAULT_CONTROLLERS: Final = ("grid", "site")
DEFAULT_LEASE_NAME: Final = "servicegroup-manager"
MANAGER_DESCRIPTION: Final = """\
Run the selected cloud-side controllers over one shared cache, under one leader election.

controllers:
  grid        DeploymentGrid, StatefulSetGrid, ServiceGrid, ConfigMapGrid: one child per NodeUnit
  site        NodeUnit, NodeGroup: label, taint and cordon nodes in bulk
  fed         (control cluster) hand fed grids to the member clusters that hold their units
  secretgrid  SecretGrid: per-unit Secrets (needs Secret rights: deploy/rbac/secretgrid)

examples:
  servicegroup manager --kubeconfig ~/.kube/config          # grid and site
  servicegroup manager --leader-elect --leader-elect-namespace servicegroup-system
  servicegroup manager --controllers grid,site --controllers fed   # a fed control cluster
  servicegroup manager --controllers grid,site,secretgrid

See docs/install.md (deploy/), docs/operations.md (health, metrics, leader election).
"""


class ControllerUnavailable(Exception):
    """A requested controller name is unknown or its module is not importable."""


def load_controller_modules(names: Iterable[str]) -> list[ModuleType]:
    """Import the modules of the named controllers; ControllerUnavailable with a one-line reason."""
    names = list(names)
    unknown = [name for name in names if name not in CONTROLLERS]
    if unknown:
        raise ControllerUnavailable(
            f"unknown controller(s) {', '.join(unknown)}; valid: {', '.join(CONTROLLERS)}"
        )
    modules = []
    for name in names:
        module_name = CONTROLLERS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is None or not module_name.startswith(err.name):
                raise
            raise ControllerUnavailable(
                f"controller {name!r} is not available: module {module_name} not found"
            ) from err
        if not callable(getattr(module, "setup", None)):
            raise ControllerUnavailable(f"controller {name!r}: {module_name} has no setup(mgr) function")
        modules.append(module)
    return modules


class Manager:
    """Runs controllers over shared informers; usable in-process by tests (`start`/`stop`)."""

    def __init__(
        self,
        client: Client,
        controllers: Sequence[str] = (),
        *,
        leader_elect: bool = False,
        leader_elect_namespace: str = "kube-system",
        leader_elect_name: str = DEFAULT_LEASE_NAME,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        health_listen: str | None = None,
        workers: int = 2,
        resync_period: float | None = None,
        drain_timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.controller_names = list(controllers)
        self.workers = workers
        self.drain_timeout = drain_timeout
        self.informers = InformerFactory(client, resync_period)
        self.controllers: list[Controller[Any]] = []
        self.health = HealthServer(health_listen) if health_listen else None
        self.elector = (
            LeaderElector(
                client,
                leader_elect_namespace,
                leader_elect_name,
                identity or f"{socket.gethostname()}_{uuid.uuid4()}",
                lease_duration,
                renew_deadline,
                retry_period,
            )
            if leader_elect
            else None
        )
        self.lost_leadership = False
        self._recorders: dict[str, EventRecorder] = {}
        self._ready_checks: dict[str, Check] = {"informers-synced": lambda: self.informers.has_synced}
        self._elector_task: asyncio.Task[None] | None = None
        self._controllers_task: asyncio.Task[Any] | None = None
        self._done = asyncio.Event()
        self._started = False

    # -- what setup(mgr) uses --------------------------------------------------------------------

    def recorder(self, component: str) -> EventRecorder:
        """The shared EventRecorder for `component` (e.g. `servicegroup-grid`)."""
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.client, component)
        return self._recorders[component]

    def add_controller(self, controller: Controller[Any]) -> None:
        """Run `controller` with the others (while leading, with leader election); before `start`."""
        if self._started:
            raise RuntimeError("add controllers in setup(mgr), before Manager.start()")
        self.controllers.append(controller)

    def add_readiness_check(self, name: str, check: Check) -> None:
        """`/readyz` also requires `check()` (sync or async) to be true."""
        self._ready_checks[name] = check
        if self.health is not None:
            self.health.add_readiness_check(name, check)

    @property
    def is_leader(self) -> bool:
        """True while controllers may run: always without election, else while holding the lease."""
        return self.elector.is_leader if self.elector is not None else self._started

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up the selected controllers, start informers, health server and controllers/election."""
        for module in load_controller_modules(self.controller_names):
            module.setup(self)
        self._started = True
        self.informers.start()
        if self.health is not None:
            for name, check in self._ready_checks.items():
                self.health.add_readiness_check(name, check)
            await self.health.start()
        if self.elector is None:
            self._controllers_task = asyncio.create_task(self._run_controllers(), name="controllers")
        else:
            self._elector_task = asyncio.create_task(self._run_elector(), name="leader election")

    async def wait(self) -> None:
        """Return when the manager has stopped or lost leadership."""
        await self._done.wait()

    async def stop(self) -> None:
        """Graceful stop: drain controllers (bounded), release the lease, stop informers and servers."""
        await asyncio.gather(*(c.stop(self.drain_timeout) for c in self.controllers))
        for task in (self._controllers_task, self._elector_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*(r.close() for r in self._recorders.values()))
        await self.informers.stop()
        if self.health is not None:
            await self.health.stop()
        self._started = False
        self._done.set()

    async def _run_controllers(self) -> None:
        await asyncio.gather(*(controller.run() for controller in self.controllers))

    async def _run_elector(self) -> None:
        assert self.elector is not None
        await self.elector.run(self._run_controllers, self._on_stopped_leading)

    def _on_stopped_leading(self) -> None:
        """Lease lost (or released): stop writing at once."""
        for controller in self.controllers:
            controller.abort()
        task = self._elector_task
        if not self._done.is_set() and task is not None and not task.cancelling():
            self.lost_leadership = True
            log.error("leadership lost; controllers stopped")
            self._done.set()


# -- command line ---------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add `servicegroup manager` to the CLI."""
    parser = subparsers.add_parser(
        "manager",
        help="run the cloud-side controllers (grid, site, fed, secretgrid)",
        description=MANAGER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster service account)")
    parser.add_argument("--context", help="kubeconfig context (default: current)")
    parser.add_argument(
        "--controllers",
        action="append",
        metavar="NAME[,NAME...]",
        help=(
            f"controllers to run; repeat to add more (default: {','.join(DEFAULT_CONTROLLERS)}; "
            f"valid: {','.join(CONTROLLERS)}; fed for a control cluster, secretgrid for SecretGrids)"
        ),
    )
    parser.add_argument(
        "--leader-elect", action="store_true", help="run controllers only while holding a Lease"
    )
    parser.add_argument("--leader-elect-namespace", default="kube-system", help="namespace of the Lease")
    parser.add_argument("--leader-elect-name", default=DEFAULT_LEASE_NAME, help="name of the Lease")
    parser.add_argument("--identity", help="leader election identity (default: hostname_uuid)")
    parser.add_argument("--lease-duration", type=float, default=15.0, help="seconds (default 15)")
    parser.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument(
        "--health-listen", default="127.0.0.1:8081", help="/healthz, /readyz, /metrics address"
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent reconciles per controller")
    parser.add_argument(
        "--resync-period", type=float, default=None, help="informer resync seconds (default off)"
    )
    add_logging_arguments(parser)
    parser.set_defaults(func=run_command)


def selected_controllers(flags: Sequence[str] | None) -> list[str]:
    """The controllers named by every `--controllers` flag, in order, each once (the defaults when
    none is given), so that kustomize components can each add one flag."""
    if not flags:
        return list(DEFAULT_CONTROLLERS)
    names = [name.strip() for flag in flags for name in flag.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def run_command(args: argparse.Namespace) -> int:
    """Entry point of `servicegroup manager`; user errors exit with one line."""
    names = selected_controllers(args.controllers)
    try:
        load_controller_modules(names)
    except ControllerUnavailable as err:
        raise SystemExit(f"servicegroup manager: error: {err}") from None
    if args.workers < 1:
        raise SystemExit("servicegroup manager: error: --workers must be at least 1")
    setup_logging_from_args(args)
    return asyncio.run(_serve(args, names))


async def _serve(args: argparse.Namespace, names: list[str]) -> int:
    client = await connect(args.kubeconfig, "manager", context=args.context)
    try:
        manager = Manager(
            client,
            names,
            leader_elect=args.leader_elect,
            leader_elect_namespace=args.leader_elect_namespace,
            leader_elect_name=args.leader_elect_name,
            identity=args.identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
            health_listen=args.health_listen or None,
            workers=args.workers,
            resync_period=args.resync_period,
        )
    except ValueError as err:
        await client.close()
        raise SystemExit(f"servicegroup manager: error: {err}") from None
    return await _run_until_signalled(manager, client)


async def _run_until_signalled(manager: Manager, client: Client) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await manager.start()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(manager.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        log.info("shutting down")
        await manager.stop()
    finally:
        await client.close()
    return 1 if manager.lost_leadership else 0
