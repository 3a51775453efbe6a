"""What every step of one resolution shares: the experiment record, the layers, the
problems found so far, and the renderer of Jinja templates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jetstream import slugs
from jetstream.config.layers import Layers, Ref
from jetstream.config.model import app_dataset
from jetstream.config.problems import WARNING, Problem
from jetstream.config.repo import ConfigRepo
from jetstream.config.sql_check import sql_problem
from jetstream.config.templating import Renderer, TemplateError

if TYPE_CHECKING:
    from jetstream.experiments import Experiment


class Context:
    def __init__(
        self,
        experiment: Experiment,
        repo: ConfigRepo,
        layers: Layers,
        config_path: str,
        placeholder: bool,
    ):
        self.exp = experiment
        self.repo = repo
        self.layers = layers
        self.config_path = config_path
        self.placeholder = placeholder
        self.app = experiment.app_name
        self.platform_dataset = experiment.app_name
        # `{dataset}` of metric data sources: the experiment's app dataset first, as
        # Jetstream passes it to mozanalysis (DataSource.from_expr_for)
        self.experiment_dataset = app_dataset(experiment.app_id)
        self.problems: list[Problem] = []
        self.renderer = Renderer(repo.functions)  # replaced once parameters are known

    def error(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def warn(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message, WARNING))

    def error_at(self, ref: Ref, message: str) -> None:
        self.error(ref.file, ref.key, message)

    def bad_name(self, name: str, ref: Ref) -> bool:
        """True (and an error at `ref`) when a metric, segment or data source name is not an
        identifier: names become SQL column names and table suffixes."""
        msg = slugs.problem(name, slugs.IDENTIFIER)
        if msg:
            self.error_at(ref, f"name {msg}")
        return msg is not None

    def render_select(self, select: str, ref: Ref) -> str | None:
        """A select_expression with Jinja rendered, checked to parse as BigQuery SQL; on a
        problem it is recorded at `ref` and None returned."""
        try:
            rendered = self.renderer.render(select)
        except TemplateError as exc:
            self.error_at(ref, str(exc))
            return None
        msg = sql_problem(rendered)
        if msg:
            self.error_at(ref, msg)
            return None
        return rendered
