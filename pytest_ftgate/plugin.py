"""The pytest face of pytest-ftgate: options, suite collection, one item per gate criterion.

Thin glue over the pure core (suite, runner, gate, report). Nothing heavy is imported at module
level: `pytest --help` and a project's ordinary tests never load torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .errors import FtgateError, FtgateWarning, GateBlocked, SuiteError
from .settings import Settings, ini_thresholds, positive_int_arg, threshold_arg

SETTINGS = pytest.StashKey[Settings]()
STATE = pytest.StashKey["GateState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ftgate", "pytest-ftgate: gate a fine-tuned candidate against its baseline")
    group.addoption("--candidate", dest="ftgate_candidate", metavar="SPEC", default=None,
                    help="candidate to gate: PEFT adapter dir, model dir, openai:MODEL or outputs .jsonl. Default: none (baseline only)")
    group.addoption("--baseline", dest="ftgate_baseline", metavar="SPEC", default=None,
                    help="baseline: model dir, openai:MODEL or outputs .jsonl. Default: the candidate adapter's base model")
    group.addoption("--ftgate-base", dest="ftgate_base", metavar="DIR", default=None,
                    help="local base model for the adapter, overriding adapter_config.json. Default: from the adapter")
    group.addoption("--ftgate-suites", dest="ftgate_suites", metavar="DIR", default=None,
                    help="directory of suite YAML files. Default: ini ftgate_suites or suites")
    group.addoption("--ftgate-fail", dest="ftgate_fail", metavar="TARGET:VALUE", action="append", type=threshold_arg, default=[],
                    help="override a threshold, e.g. golden:5%% or format:95%% (repeatable; wins over suite and ini). Default: none")
    group.addoption("--ftgate-update-goldens", dest="ftgate_update_goldens", action="store_true", default=False,
                    help="freeze the cases the baseline passes as each golden suite's golden file. Default: off")
    group.addoption("--ftgate-report-dir", dest="ftgate_report_dir", metavar="DIR", default=None,
                    help="where report.json and report.md go. Default: ini ftgate_report_dir or .ftgate/report")
    group.addoption("--ftgate-cache-dir", dest="ftgate_cache_dir", metavar="DIR", default=None,
                    help="generation cache directory. Default: ini ftgate_cache_dir or .ftgate/cache")
    group.addoption("--ftgate-no-cache", dest="ftgate_no_cache", action="store_true", default=False,
                    help="regenerate everything and store nothing. Default: off")
    group.addoption("--ftgate-4bit", dest="ftgate_4bit", action="store_true", default=False,
                    help="load local models in 4-bit NF4 (bitsandbytes). Default: off")
    group.addoption("--ftgate-batch-size", dest="ftgate_batch_size", metavar="N", type=positive_int_arg, default=None,
                    help="generation batch size for local models. Default: ini ftgate_batch_size or 16")
    group.addoption("--ftgate-openai-base-url", dest="ftgate_openai_base_url", metavar="URL", default=None,
                    help="base URL of the OpenAI-compatible endpoint for openai: subjects. Default: $OPENAI_BASE_URL")
    group.addoption("--ftgate-pricing", dest="ftgate_pricing", metavar="FILE", default=None,
                    help="pricing YAML for the TCO report. Default: ini ftgate_pricing or the bundled, dated defaults")
    group.addoption("--ftgate-seed", dest="ftgate_seed", metavar="N", type=int, default=0,
                    help="seed recorded in reports and used for sampling suites. Default: 0")
    parser.addini("ftgate_suites", "directory of suite YAML files", default="suites")
    parser.addini("ftgate_fail", "threshold overrides, one TARGET:VALUE per line", type="linelist", default=[])
    parser.addini("ftgate_report_dir", "report directory", default=".ftgate/report")
    parser.addini("ftgate_cache_dir", "generation cache directory", default=".ftgate/cache")
    parser.addini("ftgate_baseline", "default baseline spec", default="")
    parser.addini("ftgate_batch_size", "generation batch size", default="16")
    parser.addini("ftgate_pricing", "pricing YAML for the TCO report", default="")


def _settings(config: pytest.Config) -> Settings:
    opt = config.getoption
    # Relative paths are taken from the ini file's directory, else from where pytest was invoked
    # (not rootdir: pytest widens rootdir when an option value such as --candidate is a path).
    root = config.inipath.parent if config.inipath else config.invocation_params.dir

    def path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else root / p

    try:
        ini_fail = ini_thresholds(config.getini("ftgate_fail"))
    except ValueError as exc:
        raise pytest.UsageError(f"ini key ftgate_fail: {exc}") from None
    batch = opt("ftgate_batch_size")
    if batch is None:
        try:
            batch = positive_int_arg(config.getini("ftgate_batch_size"))
        except Exception as exc:
            raise pytest.UsageError(f"ini key ftgate_batch_size: {exc}") from None
    base = opt("ftgate_base")
    pricing = opt("ftgate_pricing") or config.getini("ftgate_pricing")
    return Settings(
        candidate=opt("ftgate_candidate"),
        baseline=opt("ftgate_baseline") or config.getini("ftgate_baseline") or None,
        base=path(base) if base else None,
        suites_dir=path(opt("ftgate_suites") or config.getini("ftgate_suites")),
        report_dir=path(opt("ftgate_report_dir") or config.getini("ftgate_report_dir")),
        cache_dir=None if opt("ftgate_no_cache") else path(opt("ftgate_cache_dir") or config.getini("ftgate_cache_dir")),
        ini_thresholds=ini_fail,
        cli_thresholds=tuple(opt("ftgate_fail")),
        update_goldens=opt("ftgate_update_goldens"),
        load_in_4bit=opt("ftgate_4bit"),
        batch_size=batch,
        openai_base_url=opt("ftgate_openai_base_url"),
        seed=opt("ftgate_seed"),
        pricing=path(pricing) if pricing else None,
        progress=config.getoption("verbose", 0) >= 0,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ftgate: a pytest-ftgate gate criterion (one per suite and criterion)")
    settings = _settings(config)
    config.stash[SETTINGS] = settings
    config.stash[STATE] = GateState(config, settings)
    if settings.active and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "pytest-ftgate gates need one process (a model is loaded once and every suite is generated in one "
            "batched pass); run the gate without -n, or with -p no:xdist"
        )
    if settings.active and config.args_source != pytest.Config.ArgsSource.ARGS and settings.suites_dir.is_dir():
        # `pytest --candidate x` with no paths: gate the suites even if testpaths does not name them
        if not any(_is_under(settings.suites_dir, Path(a)) for a in config.args):
            config.args.append(str(settings.suites_dir))


def _is_under(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash[SETTINGS]
    if file_path.suffix in (".yaml", ".yml") and _is_under(file_path, settings.suites_dir):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite YAML file: validated on collection, one GateItem per criterion."""

    def collect(self):
        from .gate import criteria, effective_gate
        from .suite import load_suite

        state = self.config.stash[STATE]
        try:
            suite = load_suite(self.path)
        except SuiteError as exc:
            state.load_errors.append(str(exc))
            raise self.CollectError(str(exc)) from None
        settings = state.settings
        gate = effective_gate(suite, settings.ini_thresholds, settings.cli_thresholds)
        state.suites[self.path] = suite
        for name in criteria(suite, gate):
            yield GateItem.from_parent(self, name=name, suite=suite)


class GateItem(pytest.Item):
    def __init__(self, *, suite: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.add_marker(pytest.mark.ftgate)

    def runtest(self) -> None:
        __tracebackhide__ = True
        state = self.config.stash[STATE]
        if not state.settings.active:
            raise pytest.skip.Exception("no --candidate or --baseline given: nothing to evaluate", _use_item_location=True)
        run = state.ensure_run()
        outcome = run.outcome(self.path)
        decision = next(d for d in outcome.decisions if d.criterion == self.name)
        for key, value in decision.figures.items():
            if isinstance(value, (int, float, str)):
                self.user_properties.append((f"ftgate.{self.suite.name}.{self.name}.{key}", value))
        self.user_properties.append((f"ftgate.{self.suite.name}.{self.name}.status", decision.status))
        if decision.status == "skipped":
            raise pytest.skip.Exception(decision.summary, _use_item_location=True)
        if decision.blocks:
            lines = [f"{decision.status.upper()}: {decision.summary}", *decision.breaches[1:], *(f"warning: {w}" for w in decision.warnings)]
            raise GateBlocked("\n".join(lines))
        for w in decision.warnings:
            self.warn(FtgateWarning(f"{self.suite.name}::{self.name}: {w}"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (GateBlocked, FtgateError)):
            return f"{excinfo.value}\n(suite {self.suite.path}, criterion {self.name})"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.suite.lines.get(("gate",), self.suite.lines.get((), 1))
        return self.path, line - 1 if line else None, f"{self.suite.name}::{self.name}"


class GateState:
    """Per-session state: the collected suites and, once computed, the run or its error."""

    def __init__(self, config: pytest.Config, settings: Settings):
        self.config = config
        self.settings = settings
        self.suites: dict[Path, Any] = {}
        self.selected: list[Path] = []
        self.load_errors: list[str] = []
        self.run: Any = None
        self.error: FtgateError | None = None
        self.report_paths: list[Path] = []

    def ensure_run(self) -> Any:
        __tracebackhide__ = True
        if self.run is None and self.error is None:
            from .report import write_reports
            from .runner import run_gate

            suites = [self.suites[p] for p in self.selected]
            capman = self.config.pluginmanager.getplugin("capturemanager")
            try:
                with capman.global_and_fixture_disabled() if capman else _null():
                    self.run = run_gate(suites, self.settings.run_config())
                self.report_paths = write_reports(self.run, self.settings.report_dir)
            except FtgateError as exc:
                self.error = exc
        if self.error is not None:
            raise self.error
        return self.run


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    if state.load_errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(state.load_errors))
    seen = []
    for item in session.items:
        if isinstance(item, GateItem) and item.path not in seen:
            seen.append(item.path)
    state.selected = seen


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.run is None:
        return
    from .report import terminal_lines

    tr = terminalreporter
    tr.write_sep("=", "ftgate")
    for line in terminal_lines(state.run, verbose=config.getoption("verbose", 0)):
        tr.write_line(line)
    for p in state.report_paths:
        tr.write_line(f"report: {p}")


@pytest.fixture(scope="session")
def ftgate_settings(request: pytest.FixtureRequest) -> Settings:
    """The session's pytest-ftgate settings."""
    return request.config.stash[SETTINGS]


@pytest.fixture(scope="session")
def _ftgate_subjects(request: pytest.FixtureRequest) -> Any:
    from .cache import Cache
    from .subjects import resolve_subjects

    settings: Settings = request.config.stash[SETTINGS]
    if not settings.active:
        pytest.skip("no --candidate or --baseline given: nothing to load")
    cache = Cache(settings.cache_dir)
    request.addfinalizer(cache.close)
    try:
        return resolve_subjects(settings.candidate, settings.baseline, settings.run_config().subject_options, cache)
    except FtgateError as exc:
        pytest.fail(str(exc), pytrace=False)


def _subject_fixture(request: pytest.FixtureRequest, role: str) -> Any:
    baseline, candidate = request.getfixturevalue("_ftgate_subjects")
    subject = baseline if role == "baseline" else candidate
    if subject is None:
        pytest.skip("no --candidate given")
    return subject


@pytest.fixture(scope="session")
def candidate(request: pytest.FixtureRequest) -> Any:
    """The candidate Subject (`candidate.generate("prompt")`); skips when none was given."""
    return _subject_fixture(request, "candidate")


@pytest.fixture(scope="session")
def baseline(request: pytest.FixtureRequest) -> Any:
    """The baseline Subject (`baseline.generate("prompt")`)."""
    return _subject_fixture(request, "baseline")


@pytest.fixture
def ftgate(request: pytest.FixtureRequest) -> Any:
    """Helper to load suites and gate them inside a test: `run = ftgate.run("suites/x.yaml")`."""
    from .testing import FtgateHelper

    return FtgateHelper(request.config.stash[SETTINGS])
