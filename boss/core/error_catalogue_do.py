"""The error catalogue's entries for one agent: `boss do` and `boss undo` (see error_catalogue.py)."""

from __future__ import annotations

from boss.core.error_entry import Entry

DO = "One agent (`boss do`, `boss undo`)"

DO_ENTRIES: tuple[Entry, ...] = (
    Entry("do-no-task", DO, "`boss do` without its TASK (and without --from).", 2,
          'boss do: the TASK argument is missing (boss do "TASK" --test CMD, or --from TASK.md)',
          'Give the task in quotes: `boss do "Make add() handle floats" --test CMD`.'),
    Entry("do-no-test", DO, "`boss do TASK` without --test.", 2,
          "boss do: --test CMD is missing: the acceptance test that must fail before and pass after",
          "Add the command that proves the task done: `--test 'pytest -q tests/test_calc.py'`."),
    Entry("do-from-and-task", DO, "`boss do --from TASK.md` with TASK, --test or --scope too.", 2,
          "boss do --from: the Markdown plan gives task, test and scope; drop TASK, --test, --scope",
          "Put them in the Markdown plan's section (`- test:`, `- scope:`), or drop --from."),
    Entry("do-from-many", DO, "`boss do --from` of a Markdown plan with several worker sections.", 2,
          "<file>: boss do --from takes a plan of exactly one worker (one `## ID: title` section), "
          "this one has 2; run a plan of many with `boss plan --from`",
          "Keep one section, or run it as a plan: `boss plan --from FILE.md`."),
    Entry("do-detached", DO, "`boss do` on a detached HEAD.", 2,
          "<repo>: HEAD detached; boss do lands on the current branch; check one out (git switch NAME)",
          "`git switch` the branch the work should land on, then `boss do` again."),
    Entry("do-plan-name", DO, "`boss do --plan SLUG` with a name that is not a slug.", 2,
          "boss do --plan: bad plan name 'Bad Name': must match [a-z0-9][a-z0-9-]{0,62}",
          "Use lowercase letters, digits and dashes."),
    Entry("do-plan-exists", DO, "`boss do --plan SLUG` naming a plan that exists.", 2,
          "boss do --plan: plan <plan> exists already; name another",
          "Name another, or resume that one: `boss do --retry --plan SLUG`."),
    Entry("do-nothing-to-resume", DO, "`boss do --retry` (or `boss undo`) before any `boss do`.", 2,
          '<repo>: no `boss do` to resume yet; start one: boss do "TASK" --test CMD',
          "Start one with `boss do`."),
    Entry("do-retry-args", DO, "`boss do --retry` with a TASK or the options of a new one.", 2,
          "boss do --retry: resumes a `boss do` as it was planned; give only --plan and --watch",
          "Drop them; to change the task, edit `.boss/plans/PLAN/manifest.yaml` and `boss render` "
          "(or start a new `boss do`)."),
    Entry("do-not-a-do", DO, "`boss do --retry --plan` or `boss undo` of a plan not made by `boss do`.", 2,
          "<file>/do.json: plan <plan> was not made by `boss do`; run it with its run_workers.sh and "
          "boss merge",
          "Run that plan as any plan: `run_workers.sh`, then `boss merge`."),
    Entry("do-busy", DO, "`boss do --retry` while another `boss do` works on that plan.", 1,
          "plan <plan>: another `boss do` is working on it; follow it: boss status <plan> --watch",
          "Wait for it; it lands the work itself."),
    Entry("do-worker-running", DO,
          "`boss do --retry` while its worker runs elsewhere (`run_workers.sh`, `boss retry`).", 1,
          "worker W1 of plan <plan> is running in another process (pid <pid>); follow it: boss status "
          "<plan> --watch; when it ends: boss do --retry --plan <plan>",
          "Wait for that run to end, then `boss do --retry` lands its work."),
    Entry("undo-nothing-landed", DO, "`boss undo` of a `boss do` that landed nothing.", 1,
          "plan <plan>: nothing of it landed on main, so there is nothing to undo "
          "(boss status <plan> shows W1)",
          "Nothing to take back; the branch is as it was."),
    Entry("undo-done", DO, "`boss undo` of a `boss do` already undone.", 1,
          "plan <plan>: already undone at <time> (main went to <commit>)",
          "Nothing to take back; the work stays on its branch `do/PLAN`."),
    Entry("undo-moved-since", DO, "`boss undo` after the branch got other commits since the landing.", 1,
          "plan <plan>: main moved since the work landed (now at <commit>, 1 commit(s) after <commit>), so "
          "undo would take them away too; nothing changed. To take back only this work: git revert <how>",
          "Take back only the work with the `git revert` given, which keeps the later commits."),
    Entry("undo-moved-before", DO,
          "`boss undo` of work that landed on top of commits made while the agent worked.", 1,
          "plan <plan>: main moved from its rollback point <commit> to <commit> before the work landed, "
          "so going back would take that away too; nothing changed. To take back only this work: "
          "git revert <how>",
          "Take back only the work with the `git revert` given."),
    Entry("undo-dirty", DO, "`boss undo` while your uncommitted changes are in files it would change.", 1,
          "<repo>: main is checked out here with uncommitted changes (or untracked files in the way) where "
          "the undo changes files: src/calc.py; nothing changed: commit or stash them, then boss undo again",
          "Commit or stash them (`git stash`), `boss undo`, then `git stash pop`."),
)  # fmt: skip
