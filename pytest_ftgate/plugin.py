"""The pytest face of pytest-ftgate: options, suite collection, one item per gate criterion.

Thin glue over the pure core (suite, runner, gate, report). Nothing heavy is imported at module
level: `pytest --help` and a project's ordinary tests never load torch, nor most of ftgate.

Outcomes: a criterion that blocks fails its item (exit 1); a gate that could not run (a model,
endpoint or data problem) errors its items and the session exits 6; bad suites or options exit 4;
a partial run (criteria deselected, or that checked nothing) exits 7 unless --ftgate-allow-partial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .settings.config import RunConfig, all_options, build_run_config
from .errors import EXIT_PARTIAL, FtgateError, FtgateWarning, GateBlocked, SuiteError, internal_error
from .files.paths import is_under
from .settings.options import unknown_ini_keys

CONFIG = pytest.StashKey[RunConfig]()
STATE = pytest.StashKey["GateState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ftgate", "pytest-ftgate: gate a fine-tuned candidate against its baseline")
    for option in all_options():
        group.addoption(option.flag, **option.argparse_kwargs())
        if option.ini:
            parser.addini(option.ini, option.ini_help or option.help_text, type=option.ini_type, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ftgate: a pytest-ftgate gate criterion (one per suite and criterion)")
    # Relative paths are taken from the ini file's directory, else from where pytest was invoked.
    root = config.inipath.parent if config.inipath else config.invocation_params.dir
    options = all_options()
    _refuse_unknown_ini_keys(config, options)
    values = {o.dest: config.getoption(o.dest) for o in options}
    try:
        # progress shows on a terminal whatever the verbosity (-q too), and as plain lines in CI logs
        run_config = build_run_config(values, root, config.getini)
    except FtgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CONFIG] = run_config
    config.stash[STATE] = GateState(config, run_config)
    if not run_config.active:
        return
    from .settings.extensions import load_all

    try:
        load_all()  # a broken extension stops a gate before any work, naming it; ordinary test runs never load them
        from .report.formats import chosen_formats

        chosen_formats(run_config.report_formats)  # so does a report format named wrong
    except FtgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    _refuse_misplaced_rootdir(config)
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "pytest-ftgate gates need one process (a model is loaded once and every suite is generated in one "
            "batched pass); run the gate without -n, or with -p no:xdist"
        )
    if config.args_source != pytest.Config.ArgsSource.ARGS and run_config.suites_dir.is_dir():
        # `pytest --candidate=x` with no paths: gate the suites even if testpaths does not name them
        if not any(is_under(run_config.suites_dir, Path(a)) for a in config.args):
            config.args.append(str(run_config.suites_dir))


def _refuse_unknown_ini_keys(config: pytest.Config, options: Any) -> None:
    """An ini key that starts with ftgate but is not ours is a usage error: pytest would only warn and ignore it."""
    from .settings.rootdir import ini_keys_in

    overrides = {o.partition("=")[0].strip() for o in (config.getoption("override_ini", None) or [])}
    problems = unknown_ini_keys(ini_keys_in(config.inipath) | overrides, options)
    if problems:
        where = f"{config.inipath}: " if config.inipath else ""
        raise pytest.UsageError(where + "\n".join(problems))


def _refuse_misplaced_rootdir(config: pytest.Config) -> None:
    from .settings.rootdir import misplaced_setup, space_separated_values

    if getattr(config.option, "inifilename", None):
        return  # -c fixes the ini file and the rootdir: nothing was guessed
    args = list(config.invocation_params.args)
    positional = list(config.args) if config.args_source == pytest.Config.ArgsSource.ARGS else []
    path_flags = [o.flag for o in all_options() if o.metavar and o.action is None and o.type is None]
    problem = misplaced_setup(config.invocation_params.dir, positional, config.inipath, config.rootpath,
                              space_separated_values(args, path_flags),
                              rootdir_given=bool(getattr(config.option, "rootdir", None)))
    if problem:
        raise pytest.UsageError(problem)


def _named_files(config: pytest.Config) -> frozenset[Path]:
    """YAML files named on the command line: suites wherever they are."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return frozenset()
    base = config.invocation_params.dir
    paths = (Path(a.split("::")[0]) for a in config.args)
    return frozenset((p if p.is_absolute() else base / p).resolve() for p in paths if p.suffix in (".yaml", ".yml"))


def _named_dirs(config: pytest.Config) -> tuple[Path, ...]:
    """Directories named on the command line (other than the suites directory): their suites are gated too."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ()
    base = config.invocation_params.dir
    paths = ((p if p.is_absolute() else base / p) for p in (Path(a.split("::")[0]) for a in config.args))
    return tuple(p.resolve() for p in paths if p.is_dir())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A YAML file under the suites directory, in a directory named on the command line, or named itself:
    a suite where `suite.is_suite_file` says so (the one rule `ftgate gate` follows too)."""
    from .gating.suite import is_suite_file

    if file_path.suffix not in (".yaml", ".yml"):
        return None
    state = parent.config.stash[STATE]
    named = file_path.resolve() in state.named_files
    ours = named or is_under(file_path, state.config.suites_dir) or any(is_under(file_path, d) for d in state.named_dirs)
    if ours and is_suite_file(file_path, state.config.suites_dir, named=named):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite YAML file: validated on collection, one GateItem per criterion."""

    def collect(self):
        from .gating.gate import criteria, effective_gate
        from .gating.suite import load_suite

        state = self.config.stash[STATE]
        try:
            suite = load_suite(self.path)
        except SuiteError as exc:
            state.load_errors.append(str(exc))
            raise self.CollectError(str(exc)) from None
        gate = effective_gate(suite, *state.config.thresholds)
        state.suites[self.path] = suite
        for name in criteria(suite, gate):
            yield GateItem.from_parent(self, name=name, suite=suite)


class GateItem(pytest.Item):
    """One gate criterion of one suite. `-k SUITE_NAME` selects it, as the reports name it."""

    def __init__(self, *, suite: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.add_marker(pytest.mark.ftgate)
        self.extra_keyword_matches.add(suite.name)

    def setup(self) -> None:
        __tracebackhide__ = True
        state = self.config.stash[STATE]
        if not state.config.active:
            raise pytest.skip.Exception("no --candidate or --baseline given: nothing to evaluate", _use_item_location=True)
        try:
            decision = self.decision(state.ensure_run())
        except FtgateError as exc:
            error = exc
        else:
            error = None
        if error is not None:  # outside the except: pytest would show the error twice, chained
            pytest.fail(f"the gate could not run: {error}", pytrace=False)
        if decision.status == "error":  # an error outcome, not a failure: no verdict was reached
            pytest.fail(f"the gate could not run: {decision.summary}", pytrace=False)
        for check in state.run.checks:  # about the run as a whole (leakage): every suite's items hear of it
            if check.status == "error":
                pytest.fail(f"the gate could not run: {check.criterion}: {check.summary}", pytrace=False)

    def decision(self, run: Any) -> Any:
        return next(d for d in run.outcome(self.path).decisions if d.criterion == self.name)

    def runtest(self) -> None:
        __tracebackhide__ = True
        decision = self.decision(self.config.stash[STATE].run)
        for key, value in decision.figures.items():
            if isinstance(value, (int, float, str)):
                self.user_properties.append((f"ftgate.{self.suite.name}.{self.name}.{key}", value))
        self.user_properties.append((f"ftgate.{self.suite.name}.{self.name}.status", decision.status))
        for w in decision.warnings:  # shown whether the gate passes or blocks
            _show_warning(self, FtgateWarning(f"{self.suite.name}::{self.name}: {w}"))
        run = self.config.stash[STATE].run
        for check in run.checks:
            if check.blocks and self.suite.name in check.figures.get("suites", ()):
                raise GateBlocked(f"{check.status.upper()} ({check.criterion}): {check.summary}")
        if decision.status == "skipped":
            raise pytest.skip.Exception(decision.summary, _use_item_location=True)
        if decision.blocks:
            lines = [f"{decision.status.upper()}: {decision.summary}", *decision.breaches[1:]]
            raise GateBlocked("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GateBlocked):
            return f"{excinfo.value}\n(suite {self.suite.path}, criterion {self.name})"
        if isinstance(excinfo.value, FtgateError):
            return f"the gate could not run: {excinfo.value}\n(suite {self.suite.path}, criterion {self.name})"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.suite.lines.get(("gate",), self.suite.lines.get((), 1))
        return self.path, line - 1 if line else None, f"{self.suite.name}::{self.name}"


def _show_warning(item: pytest.Item, warning: FtgateWarning) -> None:
    """Show a gate's warning in pytest's warnings summary, never raise it.

    A gate's warnings are part of its verdict (the verdict section and every report carry them), which was
    decided and written before this item ran. A filter that escalates warnings (`filterwarnings = error`,
    `-W error::...FtgateWarning`) would turn a decided gate into a traceback and an exit that disagrees with
    the verdict line, so an escalating filter shows the warning instead; one that ignores it still hides it
    from the summary."""
    import warnings

    with warnings.catch_warnings():
        if _filter_action(warning) != "ignore":
            warnings.simplefilter("always", FtgateWarning)
        item.warn(warning)


def _filter_action(warning: Warning) -> str:
    """The action the warning filters in force take on `warning` raised from this module."""
    import warnings

    text = str(warning)
    for action, message, category, module, _ in warnings.filters:
        if (isinstance(warning, category) and (message is None or message.match(text))
                and (module is None or module.match(__name__))):
            return action
    return "default"


class GateState:
    """Per-session state: the collected suites, the subjects (shared with the fixtures), the run."""

    def __init__(self, config: pytest.Config, run_config: RunConfig):
        self.pytest_config = config
        self.config = run_config
        self.suites: dict[Path, Any] = {}
        self.selection: dict[Path, frozenset[str]] = {}
        self.load_errors: list[str] = []
        self.run: Any = None
        self.error: FtgateError | None = None
        self.view: Any = None  # the report view, built once per run
        self.named_files = _named_files(config)
        self.named_dirs = _named_dirs(config)
        self.left_out: tuple[Path, ...] = ()  # suite files the paths given left out (nothing gated)
        self.gate_nodeids: frozenset[str] = frozenset()  # the gate's own items, told apart from other tests
        self.report_paths: list[Path] = []
        self._subjects: Any = None
        self._resolver: Any = None

    def resolver(self) -> Any:
        """The session's one resolver and cache: the gate, the fixtures and the judges share its subjects."""
        if self._resolver is None:
            from .stores.cache import Cache
            from .subjects import Resolver

            self._resolver = Resolver(self.config.subject_options, Cache(self.config.cache_dir))
        return self._resolver

    def subjects(self) -> Any:
        """(baseline, candidate), built once per session for the gate and the fixtures alike."""
        if self._subjects is None:
            from .gating.runner import pick_subjects

            picked = pick_subjects(self.config, self.resolver())
            self._subjects = (picked.baseline, picked.candidate)
        return self._subjects

    def ensure_run(self) -> Any:
        __tracebackhide__ = True
        if self.run is None and self.error is None:
            from contextlib import nullcontext

            from .report import publish
            from .gating.runner import run_gate

            capman = self.pytest_config.pluginmanager.getplugin("capturemanager")
            try:
                with capman.global_and_fixture_disabled() if capman else nullcontext():
                    suites = list(self.suites.values())
                    self.run = run_gate(suites, self.config, self.resolver(), self.selection)
                self.view, self.report_paths = publish(self.run, self.config)
            except FtgateError as exc:
                self.error = exc
            except Exception as exc:  # noqa: BLE001 - a fault of ours or an extension's is never the exit of a verdict
                self.error = internal_error(exc)
        if self.error is not None:
            raise self.error
        return self.run

    def close(self) -> None:
        if self._resolver is not None:
            self._resolver.close()  # a vLLM server the run started stops with the session
            self._resolver.cache.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    if state.load_errors:
        raise pytest.UsageError("invalid suite file(s):\n" + "\n".join(state.load_errors))
    selection: dict[Path, set[str]] = {}
    for item in session.items:
        if isinstance(item, GateItem):
            selection.setdefault(item.path, set()).add(item.name)
    state.selection = {p: frozenset(names) for p, names in selection.items()}
    state.gate_nodeids = frozenset(item.nodeid for item in session.items if isinstance(item, GateItem))
    if not state.config.active:
        return
    from .gating.gate import check_targets

    try:
        check_targets(state.config.thresholds[-1], state.suites.values(), "--ftgate-fail")
        check_targets(state.config.thresholds[0], state.suites.values(), "ini ftgate_fail")
    except FtgateError as exc:
        raise pytest.UsageError(str(exc)) from None
    tr = session.config.pluginmanager.getplugin("terminalreporter")
    if not state.suites:
        others = [i for i in session.items if not isinstance(i, GateItem)]
        suites_dir = state.config.suites_dir
        left = sorted(suites_dir.rglob("*.y*ml")) if suites_dir.is_dir() else []
        left = [f for f in left if f.suffix in (".yaml", ".yml")]
        if left:  # the paths given left the suites out: the tests ran, but no gate did
            state.left_out = tuple(left)
            message = (f"no suite collected: the paths given leave out the {len(left)} suite file(s) in {suites_dir}, so "
                       "nothing is gated and this run is partial (exit 7). Add the suites to the paths (or run without "
                       "paths), or pass --ftgate-allow-partial for a run of hand-written tests on purpose.")
        else:
            message = (f"no suites found in {suites_dir} (nor in the paths given): a gate that checks "
                       "nothing cannot promote. Point --ftgate-suites at your suite directory, or pass suite files.")
        if not others:
            raise pytest.UsageError(message)
        if tr:
            tr.write_line(f"ftgate: {message}", yellow=True)
    elif tr:
        files = ", ".join(sorted(str(p.relative_to(session.config.rootpath)) if is_under(p, session.config.rootpath)
                                 else str(p) for p in state.suites))
        tr.write_line(f"ftgate: {len(state.suites)} suite file(s) collected: {files}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.config.active:
        return
    state.close()
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return
    if state.error is not None:  # bad input found late (exit 4), or the gate could not run (exit 6)
        session.exitstatus = state.error.exit_code
    elif state.run is not None:
        status = state.run.exit_status(state.config.allow_partial)
        if status:  # 6 could not run, 1 blocked, 7 partial: never the exit of another outcome
            session.exitstatus = status
    elif (state.suites or state.left_out) and not state.config.allow_partial:
        session.exitstatus = EXIT_PARTIAL  # every criterion deselected, or every suite left out: nothing gated


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.config.active:
        return
    tr = terminalreporter
    if state.run is None or state.view is None:
        if state.error is not None:
            tr.write_sep("=", "ftgate")
            tr.write_line(f"verdict: ERROR — the gate could not run: {state.error}")
        elif state.suites or state.left_out:
            tr.write_sep("=", "ftgate")
            why = ("every gate criterion was deselected" if state.suites
                   else f"the paths given left out the suites in {state.config.suites_dir}")
            tr.write_line(f"verdict: PARTIAL — nothing gated: {why}; this is not a promotion")
        return
    from .report import terminal_lines

    tr.write_sep("=", "ftgate")
    lines = terminal_lines(state.view, verbose=config.getoption("verbose", 0))
    lines[-1] = _verdict_line(lines[-1], state, tr, exitstatus)
    for line in lines:
        tr.write_line(line)
    for p in state.report_paths:
        tr.write_line(f"report: {p}")


def _verdict_line(line: str, state: GateState, tr: Any, exitstatus: int) -> str:
    """The verdict line says what the exit status says. A gate that did not pass sets the session's exit itself
    (pytest_sessionfinish); a session that exits non-zero beside a passing gate says so on the same line."""
    gate_exit = state.run.exit_status(state.config.allow_partial)
    if gate_exit != 0 or int(exitstatus) == 0:
        return line
    others = [r for key in ("failed", "error") for r in tr.stats.get(key, []) if r.nodeid not in state.gate_nodeids]
    why = (f"{len(others)} test(s) outside the gate failed or errored" if others
           else "a gate item failed outside its verdict (see above)")
    verdict = "NOT PROMOTED" if state.run.verdict == "promoted" else state.run.verdict.upper()
    return f"verdict: {verdict} — the gate's criteria passed, but {why}, so this session exits {int(exitstatus)}"


def _subject_fixture(request: pytest.FixtureRequest, role: str) -> Any:
    state: GateState = request.config.stash[STATE]
    if not state.config.active:
        pytest.skip("no --candidate or --baseline given: nothing to load")
    try:
        baseline, candidate = state.subjects()
    except FtgateError as exc:
        error: FtgateError | None = exc
    else:
        error = None
    if error is not None:  # outside the except: pytest would show the error twice, chained
        pytest.fail(f"the gate could not run: {error}", pytrace=False)
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
    """The baseline Subject (`baseline.generate("prompt")`); skips when none was given."""
    return _subject_fixture(request, "baseline")


@pytest.fixture(scope="session")
def ftgate_rerun_check(request: pytest.FixtureRequest) -> Any:
    """`ftgate_rerun_check(subject, prompts, max_new_tokens=32)`: fail the test when the subject's greedy
    outputs for the prompts differ between two identical runs (a nondeterministic serving stack)."""
    from .gating.runner import rerun_differences
    from .subjects import Job
    from .types import Case, GenerationParams, Request

    def check(subject: Any, prompts: list[str], max_new_tokens: int = 32) -> None:
        __tracebackhide__ = True
        params = GenerationParams(max_new_tokens=max_new_tokens)
        jobs = [Job("rerun-check", Case(f"prompt-{i}", ({"role": "user", "content": p},)),
                    Request(({"role": "user", "content": p},), params)) for i, p in enumerate(prompts)]
        differing = rerun_differences(subject, jobs)
        if differing:
            pytest.fail("\n".join([f"{len(differing)} of {len(jobs)} prompt(s) gave different greedy outputs in two runs:",
                                    *(f"  {j.case.messages[-1]['content'][:60]!r}: {a[:60]!r} then {b[:60]!r}" for j, a, b in differing)]),
                        pytrace=False)

    return check


@pytest.fixture
def ftgate(request: pytest.FixtureRequest) -> Any:
    """Helper to load suites and gate them inside a test: `run = ftgate.run("suites/x.yaml")`.

    Skips, like `candidate`, when no --candidate or --baseline was given."""
    from .testing import FtgateHelper

    state: GateState = request.config.stash[STATE]
    if not state.config.active:
        pytest.skip("no --candidate or --baseline given: nothing to evaluate")
    return FtgateHelper(state)
