import os

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
