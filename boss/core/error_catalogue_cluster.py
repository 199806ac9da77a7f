"""The error catalogue's entries for `--engine dask` (run_workers.sh, boss merge; see error_catalogue.py)."""

from __future__ import annotations

from boss.core.error_entry import Entry

CLUSTER = "On a Dask cluster (`run_workers.sh --engine dask`, `boss merge --engine dask`)"

CLUSTER_ENTRIES: tuple[Entry, ...] = (
    Entry("dask-needs-address", CLUSTER,
          "`run_workers.sh` or `boss merge` with `--engine dask`, no scheduler (or remote) given or set.", 2,
          "<command> --engine dask needs --scheduler (or scheduler in .boss/config.yaml)",
          "Give `--scheduler tcp://HOST:PORT` and `--remote URL`, or set `scheduler:` and `remote:` in "
          "`.boss/config.yaml`."),
    Entry("dask-remote-unreadable", CLUSTER, "The shared remote cannot be read from the Boss's machine.", 1,
          "the shared remote <remote> cannot be read: <why>",
          "Fix `--remote` (a path, `ssh://` or `git://` URL every node reaches too), or create the bare "
          "repository: `git clone --bare . /srv/boss/project.git`."),
    Entry("dask-extra-missing", CLUSTER, "`--engine dask` where the `dask` extra is not installed.", 1,
          "the dask engine needs its extra (<module> is missing): pip install 'boss-worker[dask]'",
          "Install the extra into the environment boss runs from (and on every node)."),
    Entry("dask-scheduler-unreachable", CLUSTER, "Nothing answers at the scheduler's address.", 1,
          "--scheduler <address>: the Dask scheduler cannot be reached (<why>); start it or fix it",
          "Start it (`dask scheduler --host HOST --port PORT`), or give the address it printed."),
    Entry("dask-no-agent-nodes", CLUSTER, "The scheduler has no node offering the `AGENT` resource.", 1,
          "--scheduler <address>: no node offers the AGENT resource; start nodes with "
          "`dask worker ADDRESS --resources AGENT=2`",
          "Start nodes with `--resources AGENT=N` (N agents at once there); nodes without it run none."),
    Entry("dask-no-nodes", CLUSTER, "`boss merge --engine dask` where no node is connected to the scheduler.",
          1,
          "--scheduler <address>: no node is connected to it; start nodes with `dask worker ADDRESS`",
          "Start at least one node (`dask worker ADDRESS`); the ceremony's tests need no `AGENT` resource."),
    Entry("dask-node-without-boss", CLUSTER,
          "A node that cannot run boss's tasks (boss missing there, or another version).", 1,
          "--scheduler <address>: a node cannot run boss's tasks (<why>); "
          "install the same boss on every node",
          "Install the same version of boss, with its `dask` extra, into the environment each "
          "`dask worker` runs from."),
)  # fmt: skip
