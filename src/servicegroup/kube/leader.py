"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's `leaderelection` does it.

* Acquire: a Lease that is absent, released (empty holderIdentity) or not renewed for its
  `leaseDurationSeconds` (measured on our own monotonic clock from when we last saw it change, never
  by comparing wall clocks) is taken with a resourceVersion precondition; a lost race is a 409.
* Renew every `retry_period`; if no renewal has succeeded for `renew_deadline`, or another holder
  is seen, leadership is lost and `on_stopped_leading` runs at once, before the lease can expire
  for others (lease_duration > renew_deadline), so two leaders never write at the same time.
* On cancellation (graceful shutdown) the lease is released by clearing holderIdentity, so the
  next replica takes over without waiting for expiry.

Defaults: 15 s lease, 10 s renew deadline, 2 s retry (client-go's), with renew_deadline >
retry_period x 1.2 (the jitter factor) enforced.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from servicegroup.kube.client import Client
from servicegroup.kube.clock import Clock
from servicegroup.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from servicegroup.kube.metrics import LEADER
from servicegroup.kube.objects import deep_copy
from servicegroup.kube.resources import LEASES

log = logging.getLogger(__name__)

JITTER: Final = 1.2
Obj = dict[str, Any]


def micro_time(now: datetime | None = None) -> str:
    """`metav1.MicroTime` as the API server formats it."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Contends for the Lease `namespace/name` as `identity`."""

    def __init__(  # noqa: PLR0917 - positional order is the contract (docs/architecture.md)
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        *,
        clock: Clock | None = None,
        release_on_cancel: bool = True,
    ) -> None:
        if not lease_duration > renew_deadline:
            raise ValueError("lease duration must be greater than the renew deadline")
        if not renew_deadline > retry_period * JITTER:
            raise ValueError(f"renew deadline must be greater than retry period x {JITTER}")
        if not identity:
            raise ValueError("leader election identity must not be empty")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock or Clock()
        self._is_leader = False
        self._observed: Obj = {}
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        """True while this elector holds and renews the lease."""
        return self._is_leader

    @property
    def holder(self) -> str | None:
        """The holder identity last observed on the Lease (None when unknown or released)."""
        return self._observed.get("holderIdentity") or None

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None] | None],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        """Acquire, lead until the lease is lost, then return (like client-go's `Run`).

        `on_started_leading()` is called on acquisition; if it returns an awaitable, that runs as a
        task which is cancelled when leadership ends. `on_stopped_leading()` is called at once when
        leadership is lost or released. Cancel `run` for a graceful release.
        """
        await self._acquire()
        self._set_leader(True)
        log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
        leading: asyncio.Task[None] | None = None
        started = on_started_leading()
        if inspect.isawaitable(started):
            leading = asyncio.ensure_future(started)
        try:
            await self._renew_until_lost()
            log.error("lease %s/%s lost by %s", self.namespace, self.name, self.identity)
            self._stop_leading(on_stopped_leading, leading)
        except asyncio.CancelledError:
            self._stop_leading(on_stopped_leading, leading)
            if leading is not None:
                await asyncio.gather(leading, return_exceptions=True)
            if self.release_on_cancel:
                await self._release()
            raise
        if leading is not None:
            await asyncio.gather(leading, return_exceptions=True)

    def _stop_leading(
        self, on_stopped_leading: Callable[[], None], leading: asyncio.Task[None] | None
    ) -> None:
        self._set_leader(False)
        try:
            on_stopped_leading()
        finally:
            if leading is not None:
                leading.cancel()

    def _set_leader(self, value: bool) -> None:
        self._is_leader = value
        LEADER.labels(f"{self.namespace}/{self.name}").set(1 if value else 0)

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await self._clock.sleep(self.retry_period * random.uniform(1.0, JITTER))

    async def _renew_until_lost(self) -> None:
        """Return when no renewal has succeeded for `renew_deadline`, or someone else holds it."""
        last_renew = self._clock.now()
        while True:
            await self._clock.sleep(self.retry_period)
            attempt = self._clock.now()
            remaining = last_renew + self.renew_deadline - attempt
            if remaining <= 0:
                return
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel (graceful stop)
                async with asyncio.timeout(remaining):
                    renewed = await self._try_acquire_or_renew()
            except TimeoutError:
                return
            if renewed:
                last_renew = attempt
            elif self.holder not in (None, self.identity):
                return

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt; False when someone else validly holds the lease or the write failed."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            return await self._create()
        except ApiError as err:
            log.warning("lease %s/%s: get failed: %s", self.namespace, self.name, err)
            return False
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._observed_at + duration > self._clock.now():
            return False
        updated = deep_copy(lease)
        updated["spec"] = self._spec(spec if holder == self.identity else None)
        try:
            result = await self.client.replace(LEASES, updated)
        except ApiError as err:
            _log_lease_failure("update", self.namespace, self.name, err)
            return False
        self._observe(result.get("spec") or {}, force=True)
        return True

    async def _create(self) -> bool:
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._spec(None),
        }
        try:
            result = await self.client.create(LEASES, body)
        except ApiError as err:
            _log_lease_failure("create", self.namespace, self.name, err)
            return False
        self._observe(result.get("spec") or {}, force=True)
        return True

    def _spec(self, held: Obj | None) -> Obj:
        """Our record: keep acquireTime/transitions while renewing, bump them on takeover."""
        now = micro_time()
        transitions = int(self._observed.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": held.get("acquireTime", now) if held else now,
            "renewTime": now,
            "leaseTransitions": transitions if held else transitions + (1 if self._observed else 0),
        }

    def _observe(self, spec: Obj, force: bool = False) -> None:
        """Restart the expiry clock whenever the record changes (client-go's observedTime)."""
        if force or spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = self._clock.now()

    async def _release(self) -> None:
        """Clear holderIdentity if we still hold the lease (best effort, bounded)."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                lease = await self.client.get(LEASES, self.name, self.namespace)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    return
                released = deep_copy(lease)
                released["spec"] = {
                    **spec,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "renewTime": micro_time(),
                }
                await self.client.replace(LEASES, released)
                log.info("lease %s/%s released by %s", self.namespace, self.name, self.identity)
        except (ApiError, TimeoutError) as err:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, err)


def _log_lease_failure(verb: str, namespace: str, name: str, err: ApiError) -> None:
    """Losing a race to another replica is routine (debug); anything else (RBAC, 5xx) an operator must see."""
    level = logging.DEBUG if isinstance(err, (Conflict, AlreadyExists)) else logging.WARNING
    log.log(level, "lease %s/%s: %s failed: %s", namespace, name, verb, err)
