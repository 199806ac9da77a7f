"""Approvals and decisions while a worker runs on a node (README, "Running on a Dask cluster").

Both ways through Dask Variables named from the worker's task key, never a shared folder:

- the node publishes the plan's approval requests as they change (`<stop>-requests`,
  worker.engine.node); the Boss takes that worker's into the plan's folder (`take`): a new one is
  adopted pending, whatever it says (no node decides), and one the Boss told the node approved
  that comes back used is used here, once;
- the Boss publishes the decisions its person made on the requests that node knows
  (`<stop>-decisions`: approved or denied, as the Boss's request, with the node's ids of it)
  whenever they change (`publish`); the node writes them into its own
  `.boss/plans/<plan>/approvals/` (`hear`), so the running worker's guard, and a TIER 3 call
  waiting for a person (BOSS_APPROVAL_WAIT), see them as a local worker sees `boss approve`.

Ids: the Boss adopts a node's request under the node's id when that is free here, else under the
next number, so one request may have two ids. The Ledger links them (node id -> Boss id) when it
is adopted, by what does not change (worker and command); a request the Boss shipped with the
task has the same id at both ends. Everything else follows the link: a decision reaches only the
node request it is about (same worker and command, never one the node already used), and a
node's "used" counts only for a Boss request the node was told approved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boss.core import approvals, notify
from boss.core.paths import PlanPaths

HEAR_TIMEOUT = 0.1  # seconds a node waits for the Boss's decisions on each look


@dataclass
class Ledger:
    """What one running worker's node knows of the plan's approval requests."""

    sent: dict[str, approvals.Request]  # Boss id -> the request as it went with the task
    links: dict[str, str] = field(default_factory=dict)  # node id -> Boss id, adopted from this run
    told: set[str] = field(default_factory=set)  # Boss ids the node was told approved
    published: dict[str, Any] | None = None  # the last decisions published (not kept on disk)

    @classmethod
    def of(cls, sent: dict[str, approvals.Request]) -> Ledger:
        """The ledger of a task that went with these requests."""
        return cls(sent, told={r.id for r in sent.values() if r.status == approvals.APPROVED})

    def to_json(self) -> dict[str, Any]:
        """As the worker's task record keeps it (dask-task.json), to reattach with."""
        return {
            "sent": [r.to_json() for r in self.sent.values()],
            "links": self.links,
            "told": sorted(self.told),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        """The ledger a task record keeps; ValueError, TypeError or KeyError when it holds none."""
        sent = [approvals.Request(**r) for r in data["sent"]]
        links, told = data.get("links", {}), data.get("told", [])
        if not isinstance(links, dict) or not all(isinstance(v, str) for v in (*links, *links.values())):
            raise TypeError("links")
        if not isinstance(told, list) or not all(isinstance(v, str) for v in told):
            raise TypeError("told")
        return cls({r.id: r for r in sent}, dict(links), set(told))

    def known(self) -> dict[str, list[str]]:
        """{Boss id: the node's ids of it} of every request the node knows."""
        found = {boss_id: [boss_id] for boss_id in self.sent}
        for node_id, boss_id in sorted(self.links.items()):
            if node_id not in found.setdefault(boss_id, []):
                found[boss_id].append(node_id)
        return found


def save(record: Path, key: str, ledger: Ledger) -> None:
    """The worker's task record (its key and ledger), written whole."""
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps({"key": key, **ledger.to_json()}))
    tmp.replace(record)


def load(record: Path) -> tuple[str, Ledger]:
    """The key and ledger a task record holds; OSError, ValueError, KeyError or TypeError."""
    data = json.loads(record.read_text())
    return str(data["key"]), Ledger.from_json(data)


def asked(client: Any, stop: str) -> Any:
    """The approval requests a running worker's node published last, or None."""
    from distributed import Variable

    try:
        return Variable(f"{stop}-requests", client=client).get(timeout=0.2)  # type: ignore[no-untyped-call]
    except Exception:  # none asked yet, or the scheduler is busy
        return None


def exchange(client: Any, paths: PlanPaths, worker_id: str, stop: str, ledger: Ledger, requests: Any) -> bool:
    """The node's requests (asked) taken, the Boss's decisions published; whether the ledger changed."""
    changed = take(paths, worker_id, ledger, requests) if requests is not None else False
    return publish(client, f"{stop}-decisions", paths, worker_id, ledger) or changed


def forget(client: Any, stop: str) -> None:
    """What a task that is over left at the scheduler gone: the decisions published for it, the
    status and requests its node published, the mark of its first start (a scheduler serving many
    plans keeps none of them)."""
    from distributed import Event, Variable

    for kind in ("decisions", "status", "requests"):
        Variable(f"{stop}-{kind}", client=client).delete()  # type: ignore[no-untyped-call]
    Event(f"{stop}-started", client=client).clear()  # type: ignore[no-untyped-call]


def take(paths: PlanPaths, worker_id: str, ledger: Ledger, returned: Any) -> bool:
    """The node's approval requests of worker_id (returned: {file name: bytes}) into the plan's
    folder: a new one adopted pending (announced as the guard announces a local one), a used one
    the node was told approved used here. Whether the ledger changed."""
    folder, changed = paths.approvals_dir, False
    for data in returned.values() if isinstance(returned, dict) else ():
        req = approvals.parse(bytes(data)) if isinstance(data, bytes | bytearray) else None
        if req is None or req.worker != worker_id or req.plan != paths.plan:
            continue
        boss_id = ledger.links.get(req.id) or (req.id if req.id in ledger.sent else "")
        if not boss_id:
            before = {r.id for r in approvals.list_requests(folder)}
            taken = approvals.adopt(folder, req, skip=ledger.known())
            ledger.links[req.id], changed = taken.id, True
            if taken.id not in before:
                notify.emit(
                    paths.repo, notify.APPROVAL, paths.plan, worker=worker_id, request=taken.to_json()
                )
        elif req.status == approvals.USED and boss_id in ledger.told:
            approvals.use(folder, boss_id, req.worker, req.command)  # approved here still, or nothing
    return changed


def decided(paths: PlanPaths, worker_id: str, ledger: Ledger) -> list[approvals.Request]:
    """worker_id's requests its node knows that a person approved or denied at the Boss."""
    known = ledger.known()
    return [
        req for req in approvals.list_requests(paths.approvals_dir)
        if req.id in known and req.worker == worker_id and req.plan == paths.plan
        and req.status in (approvals.APPROVED, approvals.DENIED)
    ]  # fmt: skip


def publish(client: Any, name: str, paths: PlanPaths, worker_id: str, ledger: Ledger) -> bool:
    """Publish worker_id's decisions to its node (the Dask variable name: {Boss id: {"request":
    its bytes, "ids": the node's ids of it}}) when they changed; whether the node was told of a
    new approval (the ledger changed)."""
    found, known = decided(paths, worker_id, ledger), ledger.known()
    now = {r.id: {"request": json.dumps(r.to_json()).encode(), "ids": known[r.id]} for r in found}
    if now == ledger.published:
        return False
    from distributed import Variable

    Variable(name, client=client).set(now)  # type: ignore[no-untyped-call]
    ledger.published = now
    new = {r.id for r in found if r.status == approvals.APPROVED} - ledger.told
    ledger.told |= new
    return bool(new)


def hear(folder: Path, plan: str, worker_id: str, name: str, heard: Any) -> Any:
    """On the node: the Boss's decisions (the Dask variable name) into the plan's approvals
    folder here when they changed; what was heard."""
    try:
        from distributed import Variable

        got = Variable(name).get(timeout=HEAR_TIMEOUT)  # type: ignore[no-untyped-call]
    except Exception:  # none published yet, or the scheduler is busy: next time
        return heard
    if got == heard:
        return heard
    try:
        settle(folder, plan, worker_id, got)
    except Exception:  # the folder's lock was held too long, a disk error: heard again next time
        return heard
    return got


def settle(folder: Path, plan: str, worker_id: str, published: Any) -> list[approvals.Request]:
    """Each decision published for worker_id into folder, on the node's own ids of its request
    (boss.core.approvals.settle); the requests changed. (Dask's transport turns lists to tuples.)"""
    changed: list[approvals.Request] = []
    for entry in published.values() if isinstance(published, dict) else ():
        raw, ids = (entry.get("request"), entry.get("ids")) if isinstance(entry, dict) else (None, None)
        req = approvals.parse(bytes(raw)) if isinstance(raw, bytes | bytearray) else None
        if req is None or req.worker != worker_id or req.plan != plan or not isinstance(ids, list | tuple):
            continue
        changed += approvals.settle(folder, req, [i for i in ids if isinstance(i, str)])
    return changed
