"""Rendering of the templated parts of configs: `{{agg_sum(...)}}` functions from
functions.toml, `{{parameters.*}}`, `{{experiment.*}}`, `{dataset}` and `{experiment_slug}`.
Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
import jinja2.sandbox

from jetstream import slugs
from jetstream.config.model import ExperimentSettings
from jetstream.sql import literals

# The SQL column holding a client's branch where metric expressions are evaluated: the metric
# queries join the enrollments table under the alias `e`, whose `branch` column this names.
BRANCH_COLUMN = "e.branch"


class TemplateError(ValueError):
    """A template that does not render; the message says why."""


def make_function(slug: str, definition: str) -> Callable[[str], str]:
    """A functions.toml entry as a Jinja global: `{select_expr}` replaced by the argument."""

    def fn(select_expr: Any = None, *extra: Any) -> str:
        if select_expr is None or extra:
            raise TemplateError(f"function {slug}() takes exactly one argument")
        return definition.replace("{select_expr}", str(select_expr))

    fn.__name__ = slug
    return fn


def checked(value: str, what: str, rule: re.Pattern[str] = slugs.NAME) -> str:
    """An Experimenter value about to be pasted into SQL: it must pass its identifier rule
    (`jetstream.slugs`), and is escaped for a string literal's body all the same, so it can
    neither end the quotes it stands in nor change the statement around it."""
    problem = slugs.problem(value, rule)
    if problem is not None:
        raise TemplateError(f"the experiment's {what} cannot go into SQL: {problem}")
    return literals.string_body(value)


class ExperimentView:
    """What `{{experiment.*}}` may read: the resolved experiment's fields and the reference
    tool's string helpers. Reading a date that is not known is an error, not an empty string.
    Every string is an identifier checked by `checked` (dates and numbers are formatted)."""

    def __init__(self, settings: ExperimentSettings):
        self._s = settings

    @property
    def slug(self) -> str:
        return checked(self._s.slug, "slug", slugs.EXPERIMENT_SLUG)

    normandy_slug = slug
    experimenter_slug = slug

    @property
    def app_name(self) -> str:
        return checked(self._s.app_name, "app name")

    @property
    def app_id(self) -> str | None:
        app_id = self._s.app_id
        return None if app_id is None else checked(app_id, "app id")

    @property
    def reference_branch(self) -> str | None:
        ref = self._s.reference_branch
        return None if ref is None else checked(ref, "reference branch")

    @property
    def branches(self) -> list[str]:
        return [checked(b, "branch slug") for b in self._s.branch_slugs]

    @property
    def enrollment_period(self) -> int | None:
        period = self._s.enrollment_period
        return None if period is None else int(period)

    @property
    def start_date(self) -> dt.date:
        return self._need(self._s.start_date, "start date")

    @property
    def end_date(self) -> dt.date:
        return self._need(self._s.end_date, "end date")

    @property
    def start_date_str(self) -> str:
        return self.start_date.isoformat()

    @property
    def end_date_str(self) -> str:
        return self.end_date.isoformat()

    @property
    def last_enrollment_date_str(self) -> str:
        # Same as the reference tool: start date + enrollment period days.
        days = self._s.enrollment_period or 0
        return (self.start_date + dt.timedelta(days=days)).isoformat()

    def _need(self, value: dt.date | None, what: str) -> dt.date:
        if value is None:
            raise TemplateError(
                f"uses the experiment's {what}, which is not known "
                f"(set it in [experiment] or in the experiments source)"
            )
        return value


class Renderer:
    """Renders config templates with one set of functions, parameters and experiment."""

    def __init__(
        self,
        functions: Mapping[str, str],
        parameters: Mapping[str, str] | None = None,
        experiment: ExperimentSettings | None = None,
    ):
        self.env, self._templates = _environment(tuple(sorted(functions.items())))
        self.parameters = dict(parameters or {})
        self.experiment = experiment

    def render(self, text: str) -> str:
        """Render `text`; raises TemplateError with a readable reason."""
        if "{{" not in text and "{%" not in text:
            return self._slug(text)
        context: dict[str, Any] = {"parameters": self.parameters}
        if self.experiment is not None:
            context["experiment"] = ExperimentView(self.experiment)
        try:
            template = self._templates.get(text)
            if template is None:
                template = self._templates[text] = self.env.from_string(text)
            out = template.render(**context)
        except TemplateError:
            raise
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template uses something undefined: {exc.message}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template syntax error: {exc.message} (line {exc.lineno})"
            ) from exc
        except Exception as exc:  # errors raised inside templates (bad function calls, ...)
            raise TemplateError(f"template does not render: {exc}") from exc
        return self._slug(out)

    def _slug(self, text: str) -> str:
        """`{experiment_slug}` (metric-hub writes it inside quotes: `= '{experiment_slug}'`)
        becomes the checked, escaped slug."""
        if self.experiment is not None and "{experiment_slug}" in text:
            slug = checked(self.experiment.slug, "slug", slugs.EXPERIMENT_SLUG)
            return text.replace("{experiment_slug}", slug)
        return text


@functools.lru_cache(maxsize=32)
def _environment(
    functions: tuple[tuple[str, str], ...],
) -> tuple[jinja2.Environment, dict[str, jinja2.Template]]:
    """One sandboxed environment (and compiled-template cache) per set of functions."""
    env = jinja2.sandbox.SandboxedEnvironment(
        autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    for slug, definition in functions:
        env.globals[slug] = make_function(slug, definition)
    return env, {}


def format_parameter(name: str, value: str | Mapping[str, Any], distinct_by_branch: bool) -> str:
    """The SQL a `{{parameters.<name>}}` renders to. A per-branch mapping becomes a CASE on
    `BRANCH_COLUMN` with SQL string literals; when every branch has the same value, that value.
    A single value is escaped for a string literal's body (metric-hub writes
    `'{{ parameters.x }}'`), so it cannot end the quotes it stands in."""
    if not distinct_by_branch or not isinstance(value, Mapping):
        return literals.string_body(str(value))
    values = {str(k): str(v) for k, v in value.items()}
    if len(set(values.values())) == 1:
        return literals.string_body(next(iter(values.values())))
    whens = " ".join(f"WHEN {sql_string(b)} THEN {sql_string(v)}" for b, v in values.items())
    return f"CASE {BRANCH_COLUMN} {whens} END"


def sql_string(text: str) -> str:
    return literals.string(text)


_SIMPLE_TEMPLATE = re.compile(r"\{\{\s*(experiment|parameters)\.(\w+)\s*\}\}")
_UNKNOWN_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


def render_from_expression(text: str, renderer: Renderer, dataset: str | None) -> str:
    """A data source's from_expression, rendered as the reference tool does: Python
    `str.format` rules (`{dataset}` substituted, `{{` and `}}` stand for literal braces),
    plus `{{experiment.*}}` / `{{parameters.*}}` references, which are rendered first."""

    def one(m: re.Match[str]) -> str:
        return renderer.render(m.group(0))

    text = _SIMPLE_TEMPLATE.sub(one, text)
    unknown = _UNKNOWN_TEMPLATE.search(text)
    if unknown:  # metric-hub's parser refuses names it cannot render too
        raise TemplateError(
            f"unknown template name {unknown.group(1)!r} in from_expression: only "
            "{{experiment.*}}, {{parameters.*}} and {dataset} are rendered here"
        )
    needs_dataset = "{dataset}" in text
    text = text.replace("{dataset}", "\x00DATASET\x00").replace("{{", "{").replace("}}", "}")
    if needs_dataset:
        text = substitute_dataset("{dataset}", dataset).join(text.split("\x00DATASET\x00"))
    return text


def substitute_dataset(from_expression: str, dataset: str | None) -> str:
    """Replace `{dataset}`; raises TemplateError when it is needed and not known."""
    if "{dataset}" not in from_expression:
        return from_expression
    if not dataset:
        raise TemplateError(
            "from_expression uses {dataset} but the data source has no default_dataset "
            "and the experiment has no dataset"
        )
    if _DATASET.fullmatch(dataset) is None:
        raise TemplateError(
            f"dataset {dataset!r} is not a [project.]dataset name (letters, digits, '_', '-')"
        )
    return from_expression.replace("{dataset}", dataset)


_DATASET = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,2}")
