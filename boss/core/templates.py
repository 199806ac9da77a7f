"""The one Jinja environment over the templates (templates/, shipped as boss.templates): the
plan's generated files, the planner's prompt and the ceremony's report are all rendered by it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


def templates_dir() -> Path:
    """The folder of the Jinja templates: inside the installed package, or the source tree's."""
    import boss

    candidates: list[Path] = []
    try:
        from importlib.resources import files

        probe = files("boss.templates").joinpath("run_workers.sh.j2")
        if isinstance(probe, Path):
            candidates.append(probe.parent)
    except (ImportError, TypeError):  # editable installs may not map the namespace package
        pass
    here = Path(boss.__file__).parent
    candidates += [here / "templates", here.parent / "templates"]
    for c in candidates:
        if (c / "run_workers.sh.j2").is_file():
            return c
    msg = f"boss templates not found (looked in {', '.join(map(str, candidates))}); reinstall boss"
    raise FileNotFoundError(msg)


def make_env(directory: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment: strict undefined, trailing newlines kept, our filters."""
    import jinja2

    from boss.core.mdtext import FILTERS

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - we render shell and Markdown, never HTML
    )
    env.filters.update(FILTERS)
    return env
