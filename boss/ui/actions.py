"""What the page's buttons do: the CLI's own functions (boss.core.rulings for approve, deny,
drop; boss.ceremony.quarantine for a review), or the CLI itself as a child process for the
long runs (`boss retry`, `boss merge`), followed on a job page. Nothing here writes a file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boss.core import rulings
from boss.core.errors import InputError

if TYPE_CHECKING:
    from boss.ui.site import Site

REVIEWS = ("accept", "reject", "salvage")


def _need(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        msg = f"the form field {name} is empty"
        raise InputError(msg)
    return value


def run(site: Site, name: str, fields: dict[str, str]) -> tuple[str, str]:
    """Do action name; what to say, and the page to go back to."""
    back = fields.get("back") or "/"
    paths, m, config = site.open()
    if name in ("approve", "deny"):
        reason = fields.get("reason", "").strip()
        req = rulings.decide(paths, _need(fields, "id"), reason, approve=name == "approve")
        said = f"{req.id} {'approved' if name == 'approve' else 'denied'}: {req.command}"
        if name == "approve":
            said += f"\nIt runs once when {req.worker} tries it again (Retry {req.worker})."
        return said, back
    if name == "quarantine":
        from boss.ceremony import quarantine as q

        decision = fields.get("decision", "")
        if decision not in REVIEWS:
            msg = f"the form field decision must be one of {', '.join(REVIEWS)}"
            raise InputError(msg)
        wid = _need(fields, "worker")
        reason = fields.get("reason", "").strip()
        if not reason and decision == "salvage":
            reason = "out-of-scope changes dropped at review"
        if not reason:
            msg = f"give the reason to {decision} {wid} (it is recorded with the decision)"
            raise InputError(msg)
        d = getattr(q, decision)(paths, m, config, wid, reason)
        if decision == "reject":
            return f"{wid}: rejected; it will not be merged", back
        dropped = f" (dropped: {', '.join(d.out_of_scope) or 'nothing'})" if decision == "salvage" else ""
        done = {"accept": "accepted", "salvage": "salvaged"}[decision]
        return f"{wid}: {done} as {d.head[:10]}{dropped}; queued for the next merge", back
    if name == "drop":
        wid = _need(fields, "worker")
        record = rulings.drop(paths, m, config, wid, _need(fields, "reason")).record
        return f"{wid}: dropped ({record.reason}); boss merge will not merge it", back
    if name == "undrop":
        wid = _need(fields, "worker")
        rulings.undrop(paths, m, wid)
        return f"{wid}: no longer dropped; the next merge judges it again", back
    if name in ("retry", "merge"):
        if name == "merge":
            args = ["merge", paths.plan]
        else:
            wid = m.worker(_need(fields, "worker")).id
            args = ["retry", wid, "--plan", paths.plan, *(["--fresh"] if fields.get("fresh") else [])]
        job = site.jobs.running(*args) or site.jobs.start(f"boss {' '.join(args)}", *args)
        return f"started: {' '.join(job.argv)}", f"/job/{job.number}"
    msg = f"no action {name!r}"
    raise InputError(msg)
