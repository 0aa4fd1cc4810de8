"""Load a script of ``benchmarks/`` as a module, optionally with the CLI's training stubbed."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name, monkeypatch=None, fake_benchmark=None):
    """The module of ``benchmarks/<name>.py``.

    With ``fake_benchmark``, the module's ``benchmark`` (``skfewshot._cli``'s,
    which trains and scores) is replaced by it through ``monkeypatch``, and
    the arguments of every call are recorded in the module's ``calls`` list.
    """
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if fake_benchmark is not None:
        module.calls = []

        def recorded(args):
            module.calls.append(args)
            return fake_benchmark(args)

        monkeypatch.setattr(module, "benchmark", recorded)
    return module
