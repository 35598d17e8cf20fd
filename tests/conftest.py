import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_terminal_summary(terminalreporter):
    try:
        from tests.keras_helpers import CHECKED
    except Exception:
        return
    if CHECKED:
        terminalreporter.write_sep("-", "models checked bit-exact against the framework")
        for k, v in sorted(CHECKED.items()):
            terminalreporter.write_line(f"{v:5d}  {k}")


def pytest_sessionfinish(session):
    """Under pytest-xdist each worker counts its own models: hand the counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        try:
            from tests.keras_helpers import CHECKED
        except Exception:
            return
        workeroutput["checked"] = dict(CHECKED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    try:
        from tests.keras_helpers import CHECKED
    except Exception:
        return
    for k, v in getattr(node, "workeroutput", {}).get("checked", {}).items():
        CHECKED[k] += v
