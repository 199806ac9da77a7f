"""Every error a person can meet, in one place: what happened, the message, and what to do.

The README's "Errors" section is rendered from this list (`render()`), and
`tests/test_errors.py` drives each entry through the real CLI and checks that the message
matches the entry's, starts with `Error:`, and comes with the entry's exit code and no
traceback. In `message`, a word in angle brackets (`<repo>`) stands for any text. The entries
of `boss do` and `boss undo` are in error_catalogue_do.py (an Entry is error_entry.py's).
"""

from __future__ import annotations

import re

from boss.core.error_catalogue_cluster import CLUSTER_ENTRIES
from boss.core.error_catalogue_do import DO_ENTRIES
from boss.core.error_entry import Entry

_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")

REPO = "Repository and plan"
MAKE = "Making a plan (`boss plan`)"
MANIFEST = "Manifest (`manifest.yaml`, `boss validate`)"
MARKDOWN = "Markdown plan (`boss plan --from FILE.md`)"
CONFIG = "Configuration (`.boss/config.yaml`)"
AGENTS = "Agents and the planner"
WORKERS = "Workers (`worker run`, `boss retry`, `run_workers.sh`)"
MERGE = "Merge and review (`boss merge`, `boss quarantine`)"
TIERS = "Tiered autonomy (`boss approve`, `worker classify`, `worker restore`)"
UI = "The dashboard (`boss ui`)"
ANY = "Any command"

_PLAN_ENTRIES: tuple[Entry, ...] = (
    # --- repository and plan ---------------------------------------------------------------
    Entry("not-a-repo", REPO, "A command runs outside a git repository.", 2,
          "<dir>: not inside a git repository (run `git init` first)",
          "`cd` into your repository, or `git init` one."),
    Entry("no-commits", REPO, "`boss plan` in a repository without a commit.", 2,
          "<repo>: the repository has no commits yet; commit something first (workers start from a commit)",
          "Make a first commit."),
    Entry("no-plan", REPO, "A plan command before any plan exists.", 2,
          "<repo>: no plan yet; create one with `boss plan --from FILE.md` (or `boss demo`)",
          "Write a plan: `boss plan --from PLAN.md`."),
    Entry("several-plans", REPO, "Several plans exist and the command names none.", 2,
          "<repo>/.boss/plans: several plans (<plans>); name one: as the argument of a plan "
          "command (`boss status PLAN`), or with --plan (`boss retry ID --plan PLAN`)",
          "Add the plan: `boss status PLAN`, or `--plan PLAN` for worker commands."),
    Entry("unknown-plan", REPO, "The plan named does not exist.", 2,
          "<repo>/.boss/plans: no plan 'nope' (plans: <plans>)",
          "Use one of the plans listed."),
    Entry("unknown-worker", REPO,
          "A worker id that is not in the plan (`boss log --worker`, `boss retry`, `boss quarantine show`, "
          "`worker restore`).",
          2, "<plan>: no worker 'NOPE' (workers: <ids>)",
          "Use one of the ids listed."),
    # --- boss plan --------------------------------------------------------------------------
    Entry("plan-mode", MAKE, "`boss plan` without exactly one of `--from`, `--agent`, `--split` "
          "(`--split` may take `--agent`: the workers' agent).", 2,
          'boss plan: give exactly one of --from FILE.md, --agent NAME "TASK" or --split GLOB "TASK"',
          "Pick one way to plan."),
    Entry("plan-task-missing", MAKE, "`--agent` or `--split` without the TASK argument.", 2,
          "boss plan --agent: the TASK argument is missing",
          'Add the task in quotes: `boss plan --agent claude "Add a login page"`.'),
    Entry("plan-task-with-from", MAKE, "`--from` with a TASK argument too.", 2,
          "boss plan --from: the task comes from the Markdown file; drop the TASK argument",
          "Drop the argument; the paragraph under the `#` heading is the task."),
    Entry("plan-test-without-split", MAKE, "`--test` without `--split`.", 2,
          "boss plan --test: only for --split (Markdown and agent plans set each worker's test)",
          "Set each worker's `test:` in the plan instead."),
    Entry("split-without-test", MAKE, "`--split` without `--test`.", 2,
          "--split needs --test CMD: each worker's acceptance test (`{dir}` becomes its folder)",
          "Add `--test 'make -C {dir} test'` (or your command)."),
    Entry("split-no-match", MAKE, "`--split GLOB` matches no tracked folder.", 2,
          "--split 'nomatch/*': no tracked folder matches (globs match folders, e.g. 'packages/*')",
          "Write a glob of folders (`packages/*`), relative to the repository root."),
    Entry("plan-file-unreadable", MAKE, "The Markdown file cannot be read.", 2,
          "nothere.md: cannot read: No such file or directory",
          "Check the path."),
    Entry("plan-exists", MAKE, "A plan of the same name exists.", 2,
          "<manifest>: plan 'alpha' already exists; pass --force to replace it, "
          "or --plan SLUG to make another",
          "`--force` replaces it; `--plan SLUG` makes another."),
    Entry("detached-head", MAKE, "`boss plan` on a detached HEAD without `--base`.", 2,
          "<repo>: HEAD is detached; name the branch the workers start from with --base BRANCH",
          "Add `--base main` (or check out a branch)."),
    Entry("base-missing", MAKE, "The base branch does not exist.", 2,
          "<repo>: base branch 'nobranch' (--base) does not exist (branches: main); name an existing branch",
          "Name an existing branch (`base:` in the plan, or `--base`)."),
    # --- manifest ---------------------------------------------------------------------------
    Entry("manifest-unknown-key", MANIFEST, "An unknown key (often a typo), in the plan or a worker.", 2,
          "<file>: worker W1 field colour: unknown key (allowed: <keys>)",
          "Fix the key; the allowed ones are listed."),
    Entry("manifest-missing-field", MANIFEST, "A required field is missing.", 2,
          "<file>: worker W1 field test: required field is missing",
          "Add the field (a worker needs `id`, `title`, `scope` and `test`)."),
    Entry("manifest-bad-value", MANIFEST, "A field has a value of the wrong kind.", 2,
          "<file>: worker W1 field max_iterations: must be a whole number from 1 to 100",
          "Give a value of the kind the message says."),
    Entry("manifest-bad-version", MANIFEST, "A manifest version this tool does not read.", 2,
          "<file>: field version: unsupported version 2 (this tool reads version 1)",
          "Write `version: 1`."),
    Entry("manifest-duplicate-id", MANIFEST, "Two workers have the same id.", 2,
          "<file>: worker W1 field id: duplicate id (ids must be unique in the plan)",
          "Rename one."),
    Entry("manifest-unknown-dependency", MANIFEST, "`depends_on` names no worker of the plan.", 2,
          "<file>: worker W2 field depends_on: names no worker W9 (workers: W1, W2)",
          "Fix the id, or add that worker."),
    Entry("manifest-self-dependency", MANIFEST, "A worker depends on itself.", 2,
          "<file>: worker W1 field depends_on: a worker cannot depend on itself",
          "Remove its own id from `depends_on`."),
    Entry("manifest-cycle", MANIFEST, "Dependencies form a cycle.", 2,
          "<file>: worker A field depends_on: dependency cycle A -> B -> C -> A (each depends on the next)",
          "Remove one dependency of the cycle."),
    Entry("manifest-group-apart", MANIFEST, "A group cannot be merged one member after another.", 2,
          "<file>: worker A field group: group g cannot be merged one member after another: group g -> X "
          "-> group g (each depends on the next); put the workers between them in the group, or drop a "
          "dependency",
          "A member depends on a worker outside the group that depends on another member: put that "
          "worker in the group too, or drop one of the dependencies."),
    Entry("manifest-bad-regex", MANIFEST, "A scope is not a valid Python regex.", 2,
          "<file>: worker W1 field scope: invalid regex '^src/(': missing ), unterminated subpattern <at>",
          "Fix the regex (escape `.`, `(` and `[` with `\\`)."),
    Entry("manifest-empty-scope", MANIFEST, "A scope regex is empty.", 2,
          "<file>: worker W1 field scope: empty regex (write '^' to allow every path)",
          "Write the folders the worker may change (`^src/auth/`), or `^` for everything."),
    Entry("manifest-bad-branch", MANIFEST, "A branch name git refuses.", 2,
          "<file>: worker W1 field branch: invalid branch name 'feat/a..b': it contains '..' "
          "(see git check-ref-format)",
          "Pick another name, or drop `branch:` for the default `feat/<id>-<title>`."),
    Entry("manifest-branch-is-base", MANIFEST, "A worker's branch is the base branch.", 2,
          "<file>: worker W1 field branch: 'main' is the plan's base branch",
          "Give the worker its own branch."),
    Entry("manifest-shared-branch", MANIFEST, "Two workers on one branch.", 2,
          "<file>: worker W2 field branch: branch 'feat/same' is also worker W1's",
          "Give each worker its own branch."),
    Entry("manifest-bad-slug", MANIFEST, "The plan name is not a slug.", 2,
          "<file>: field plan: bad slug Bad_Slug: must match [a-z0-9][a-z0-9-]{0,62}",
          "Use lowercase letters, digits and dashes."),
    Entry("manifest-bad-id", MANIFEST, "A worker id is not valid.", 2,
          "<file>: worker 9bad field id: bad id: must match [A-Za-z][A-Za-z0-9_-]{0,31}",
          "Start with a letter; letters, digits, `_` and `-` only."),
    Entry("invalid-yaml", MANIFEST, "A YAML file (manifest, config, policy) does not parse.", 2,
          "<file>: line <n> invalid YAML: <problem>",
          "Fix that line (quote values holding `: `, `#`, `[` or `{`)."),
    # --- Markdown plan ----------------------------------------------------------------------
    Entry("md-no-title", MARKDOWN, "No `# Title` heading.", 2,
          "<file>:1: plan: no `# Title` heading: the first `# ` heading names the plan",
          "Start the file with `# Plan title` and a paragraph (the task)."),
    Entry("md-no-workers", MARKDOWN, "No `## ID: title` section.", 2,
          "<file>:1: plan field workers: no workers: add a `## ID: title` section per worker",
          "Add one `## W1: title` section per worker."),
    Entry("md-bad-heading", MARKDOWN, "A `##` heading that is not `## ID: title`.", 2,
          "<file>:3: worker 'W1 x': heading must be `## ID: title`",
          "Write `## W1: Title`."),
    Entry("md-bad-field", MARKDOWN, "A `- key: value` line with an unknown key.", 2,
          "<file>:5: worker W1 field tset: unknown field (allowed: <keys>); write the list as "
          "`- key: value`, and start free text with a sentence, not a list",
          "Fix the key; instructions start with a sentence."),
    # --- configuration ----------------------------------------------------------------------
    Entry("config-unknown-key", CONFIG, "An unknown key in `.boss/config.yaml`.", 2,
          "<file>: field agnets: unknown key (allowed: agents, engine, heartbeat_stale, jobs, log_cap_mb, "
          "merge_slots, notify, planner_timeout, remote, sandbox, scheduler, worktree_root)",
          "Fix the key."),
    Entry("config-agent-no-command", CONFIG, "An agent profile without `command`.", 2,
          "<file>: agent mybot: field command: must be a non-empty shell command",
          "Add `command:` (run with bash in the worktree)."),
    Entry("config-bad-value", CONFIG, "A setting with a value of the wrong kind.", 2,
          "<file>: field jobs: must be a whole number >= 0",
          "Give a value of the kind the message says."),
    Entry("config-sandbox", CONFIG, "`sandbox:` (or `BOSS_SANDBOX`) is not required, auto or off.", 2,
          "<file>: field sandbox: must be one of required, auto, off",
          "Say `required`, `auto` or `off` (README, Sandbox)."),
    # --- agents -----------------------------------------------------------------------------
    Entry("unknown-agent-planner", AGENTS, "`boss plan --agent NAME` names no profile.", 2,
          ".boss/config.yaml: agent 'nosuch' is not defined (known: <names>); add it under `agents:`",
          "Use a built-in profile, or define yours under `agents:`."),
    Entry("unknown-agent-worker", AGENTS, "A worker's `agent` names no profile.", 2,
          "<manifest>: worker W1 field agent: no agent profile 'nosuch' (known: <names>); use one of "
          "them, or define it under `agents:` in .boss/config.yaml",
          "Fix `agent:` in the plan, or define the profile in `.boss/config.yaml`."),
    Entry("scripted-cannot-plan", AGENTS, "`boss plan --agent scripted`.", 2,
          "the scripted agent cannot plan; use --from FILE.md or a command profile",
          "Plan with `--from`, or with a real agent."),
    Entry("planner-failed", AGENTS, "The planner agent exits with an error (or times out).", 1,
          "planner 'badplanner' exited with code 3; its output is kept in .boss/planner/last-output.txt",
          "Read that file (log-in, quota, flags); `planner_timeout` in `.boss/config.yaml` sets the limit."),
    Entry("planner-invalid", AGENTS, "The planner gives no valid manifest in three attempts.", 1,
          "planner 'chatty' gave no valid manifest in 3 attempts; its last answer is kept in "
          ".boss/planner/last-output.txt <rest>",
          "Read its last answer; plan by hand with `--from`, or a better task description."),
    # --- workers ----------------------------------------------------------------------------
    Entry("dependency-not-done", WORKERS, "`worker run` of a worker whose dependency has not succeeded.", 1,
          "worker W2 depends on W1, which is PENDING; run W1 first",
          "Run the plan with `run_workers.sh`: it runs dependencies first."),
    Entry("worker-busy", WORKERS, "`worker run` (or `boss retry`) while that worker runs elsewhere.", 1,
          "worker W1 of plan alpha is already running in another process",
          "Wait for it (`boss status --watch`), or stop that run first."),
    Entry("hand-commits", WORKERS,
          "`boss retry` or `worker run` (so `run_workers.sh`) of a worker whose branch holds commits boss "
          "did not make: work finished by hand.", 1,
          "worker W1: branch <branch> holds 1 commit boss did not make (<sha> finish by hand); the retry "
          "would reset the branch to its start and lose them: land them with `boss merge alpha`, or add "
          "--discard to drop them",
          "Merge them (`boss merge`: they are verified like any worker's work), or drop them: "
          "`boss retry W1 --discard`."),
    Entry("worker-dropped", WORKERS, "`boss retry` of a worker dropped with `boss drop`.", 1,
          "worker W1 is dropped (<reason>); take it back first: boss drop W1 --undo",
          "`boss drop W1 --undo`, then retry it."),
    Entry("not-dropped", WORKERS, "`boss drop ID --undo` of a worker that is not dropped.", 2,
          "plan alpha: worker W1 is not dropped; nothing to undo",
          "Nothing to do; `boss status` lists the dropped workers."),
    Entry("context-missing", WORKERS, "A worker's `CONTEXT.md` is gone.", 1,
          "<file>/CONTEXT.md: missing; run `boss render alpha` first",
          "`boss render`."),
    Entry("sandbox-required", WORKERS, "`sandbox: required` (or `BOSS_SANDBOX=required`), and "
          "bubblewrap is missing or cannot run here.", 1,
          "the sandbox is required (<source>) but bubblewrap (bwrap) is not installed; install bubblewrap "
          "(`apt-get install bubblewrap`, `dnf install bubblewrap`) or set `sandbox: off`",
          "Install bubblewrap (README, Sandbox); on a machine where it cannot run, `sandbox: off` runs "
          "without it, knowingly."),
    Entry("sandbox-real-cli", WORKERS, "A real agent CLI (claude, codex, gemini, opencode, aider) would "
          "run without a sandbox (`sandbox: auto`, no bubblewrap).", 1,
          "the claude agent CLI runs only inside a sandbox, and here there is none: bubblewrap (bwrap) "
          "is not installed (sandbox: auto); install bubblewrap <rest>",
          "Install bubblewrap, or set `sandbox: off` in `.boss/config.yaml` to run it unconfined."),
    Entry("cost-cap-without-cost", WORKERS, "A worker whose agent CLI reports no cost (codex, gemini) "
          "has a cost cap (`max_cost_usd`, or the plan's `budget_usd`).", 2,
          "<manifest>: worker W1 field max_cost_usd: the codex CLI reports tokens, not money, so boss "
          "cannot hold a cost cap on it (it guesses no price): use max_tokens",
          "Cap its tokens with `max_tokens` instead, or give the worker an agent that reports its cost."),
    Entry("only-unknown", WORKERS, "`run_workers.sh --only` names no worker.", 2,
          "run_workers.sh --only: plan alpha has no worker 'NOPE'",
          "Use the ids of the plan (`boss status`)."),
    Entry("script-usage", WORKERS,
          "`run_workers.sh` with an argument it does not take (`-j 0`, `--only ''`).", 2,
          "run_workers.sh: unknown argument '--bogus'",
          "`bash run_workers.sh --help` lists `-j N` and `--only ID,...`."),
    Entry("retry-dependent-running", WORKERS,
          "`boss retry` of a worker one of whose dependents is running.", 1,
          "worker W2 of plan alpha is running and depends on W1, which would change under it; stop it "
          "(Ctrl-C in its terminal) before retrying W1",
          "Let the dependent finish or stop it; the retry then drops its result and it runs again."),
    Entry("redo-nothing", WORKERS, "`boss retry ID --onto` of a worker that has nothing to redo.", 1,
          "worker W1 is <state>: only a worker that ended CONFLICT or REVERTED in `boss merge`, or "
          "FAILED, is redone with --onto (run it again with `boss retry W1`)",
          "Redo only what `boss merge` dropped or what failed; `boss retry ID` runs any worker again."),
    Entry("redo-dependency-not-in-base", WORKERS, "`boss retry ID --onto` of a worker whose dependency's "
          "work is not in the base yet.", 1,
          "worker W2 depends on W1, whose work is not in <commit>; merge it first (boss merge), then redo W2",
          "Merge the dependency (`boss merge`), then redo the worker; or `boss retry ID` without --onto."),
    Entry("redo-not-on-base", WORKERS, "`boss retry ID --onto BASE` where BASE is not a commit of the "
          "plan's base branch.", 2,
          "--onto <name>: <why>; a worker is redone only on main (no value: main as it is now)",
          "Leave the value out (the base branch as it is now), or name a commit of the base branch."),
    Entry("run-while-running", WORKERS, "`run_workers.sh` while one of its workers runs elsewhere.", 2,
          "worker W1 of plan alpha is running in another process; wait for it or stop it first",
          "Wait for it, or stop that run (Ctrl-C in its terminal)."),
    Entry("pool-stopped", WORKERS, "The worker pool `run_workers.sh` starts its workers from was killed.", 1,
          "run_workers.sh: the worker pool of plan alpha stopped; boss status alpha shows the workers",
          "Workers it had started finish on their own; run the script again to resume the rest."),
    Entry("pool-events-fd", WORKERS, "`worker pool` run by hand without its events file descriptor.", 2,
          "worker pool: --events-fd 97 is not open (<reason>)",
          "Leave `worker pool` to `run_workers.sh`; it opens the descriptor."),
    Entry("render-running-changed", WORKERS, "`boss render` or `boss plan --force` changes the "
          "definition of a worker that is running.", 1,
          "worker W1 of plan alpha is running and its test changed; stop it (Ctrl-C in its terminal) "
          "before changing its definition, then render again",
          "Let it finish or stop it, then render again: it is reset and runs with the new definition."),
    Entry("render-running-removed", WORKERS, "`boss render` after removing a running worker from "
          "the manifest.", 1,
          "worker W2 of plan alpha is running and it was removed from the manifest; stop it (Ctrl-C in "
          "its terminal) before removing it, then render again",
          "Let it finish or stop it, then render again: it is no longer rendered or run."),
    Entry("corrupted-status", WORKERS, "A hand-edited `status.json` with a wrong value.", 2,
          "<file>/status.json: <problem>",
          "Delete the file (the worker then reads PENDING) and run the worker again."),
    Entry("demo-not-empty", WORKERS, "`boss demo DIR` into a folder that is not empty.", 2,
          "<dir>: exists and is not empty; name another folder: boss demo DIR",
          "Name a new folder; `--force` replaces an earlier demo."),
    # --- merge and review -------------------------------------------------------------------
    Entry("merge-busy", MERGE, "`boss merge` while another ceremony of the plan runs.", 1,
          "another `boss merge alpha` is running (lock: <file>)",
          "Wait for it to finish."),
    Entry("not-quarantined", MERGE, "`boss quarantine accept|reject|salvage` of a worker not quarantined.", 2,
          "plan alpha: worker W1 is not quarantined (see `boss quarantine list`)",
          "`boss quarantine list` shows what is."),
    Entry("diff-not-started", MERGE, "`boss diff` of a worker that has not run yet.", 2,
          "worker W1 has not started: no refs/boss/alpha/W1/start yet; run it first",
          "Run the worker (`bash .boss/plans/alpha/run_workers.sh`), then `boss diff W1`."),
    Entry("diff-no-branch", MERGE, "`boss diff` of a worker whose branch was deleted by hand.", 2,
          "worker W1: its branch <branch> does not exist and its status names no head commit; "
          "run it again (boss retry W1 --plan alpha)",
          "Run the worker again; its work starts afresh from its start."),
    # --- tiered autonomy -------------------------------------------------------------------
    Entry("approval-unknown", TIERS, "`boss approve` or `boss deny` of a request that does not exist.", 2,
          "<repo>/.boss/plans/alpha/approvals: no approval request 'NOPE' (pending: none)",
          "`boss approvals` lists the pending ones."),
    Entry("policy-invalid", TIERS, "A rule of `.boss/policy.yaml` is not valid.", 2,
          "<file>/.boss/policy.yaml: rule deploy: field tier: must be 1, 2 or 3",
          "Fix the rule; `worker classify --check` checks every rule and its examples."),
    Entry("classify-usage", TIERS, "`worker classify` without a command line.", 2,
          "give one command line as one argument (quote it), or --stdin",
          "Quote it: `worker classify -- 'rm -rf build'`, or pipe lines into `--stdin`."),
    Entry("classify-words", TIERS, "`worker classify` with the command line in several arguments.", 2,
          "command: 2 arguments given; quote the command line into one argument",
          "Quote it: `worker classify -- 'rm x'`."),
    Entry("restore-no-worktree", TIERS, "`worker restore` of a worker that has no worktree (never ran).", 1,
          "worker W1: no worktree at <path>",
          "Nothing to restore: the worker has not run."),
)  # fmt: skip

UI_ENTRIES: tuple[Entry, ...] = (
    # --- boss ui ----------------------------------------------------------------------------
    Entry("ui-extra-missing", UI, "`boss ui` where the `ui` extra (Starlette, uvicorn) is not installed.", 2,
          "boss ui needs its extra (<module> is missing): pip install 'boss-worker[ui]'",
          "Install the extra into the environment boss runs from."),
    Entry("ui-port-busy", UI, "`boss ui --port N` where something already listens on N.", 2,
          "--port <port>: cannot listen on <address>:<port> (<why>); pick another or leave it out",
          "Leave `--port` out (a free port is chosen) or pick another."),
    Entry("ui-host-not-loopback", UI, "`boss ui --host ADDRESS` where ADDRESS is not a loopback address.", 2,
          "--host <address>: not a loopback address; boss ui listens only on this machine (127.0.0.1, "
          "127.x.y.z or ::1)",
          "Leave `--host` out (an address of its own is chosen) or give a loopback address."),
)  # fmt: skip

ANY_ENTRIES: tuple[Entry, ...] = (
    # --- any command ------------------------------------------------------------------------
    Entry("usage", ANY, "An unknown option, a missing argument or a missing option.", 2,
          "No such option<x>--bogus<x>",
          "`boss COMMAND --help` shows the usage."),
    Entry("git-failed", ANY, "A git command (or another program) the tool needed fails.", 1,
          "command failed (exit 128): git -C <worktree> reset --quiet --hard <commit>",
          "The lines after it show the program's own output (`stderr:`, `stdout:`), which says why: "
          "here a crashed git left an `index.lock` to remove."),
    Entry("internal-error", ANY, "A bug: an error the tool did not expect.", 1,
          "internal error (<error>); the full trace is in <file>. Please report it.",
          "Report it with the trace file (`.boss/crash-*.log`)."),
)  # fmt: skip

ENTRIES: tuple[Entry, ...] = (*_PLAN_ENTRIES, *DO_ENTRIES, *CLUSTER_ENTRIES, *UI_ENTRIES, *ANY_ENTRIES)


def pattern(entry: Entry) -> re.Pattern[str]:
    """A regex finding the entry's message (placeholders match any text) in stderr."""
    parts = _PLACEHOLDER.split(entry.message)
    return re.compile("Error: " + ".+?".join(re.escape(p) for p in parts))


def _cell(text: str, code: bool = False) -> str:
    text = text.replace("|", "\\|")
    if not code:
        return text
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") or fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render() -> str:
    """The README's table of errors, one section per area."""
    lines: list[str] = []
    area = ""
    for e in ENTRIES:
        if e.area != area:
            area = e.area
            lines += ["", f"**{area}**", "", "| Situation | Exit | The message | What to do |",
                      "| --- | --- | --- | --- |"]  # fmt: skip
        message = _cell(f"Error: {e.message}", code=True)
        lines.append(f"| {_cell(e.situation)} | {e.exit_code} | {message} | {_cell(e.fix)} |")
    return "\n".join(lines).strip() + "\n"
