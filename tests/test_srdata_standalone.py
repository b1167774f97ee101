"""srdata must stay usable without Paddle: users who only prepare data never pay its import."""

from __future__ import annotations

from helpers import run_python


def test_srdata_never_imports_paddle():
    # A fresh interpreter: in this test process other tests may already have imported Paddle.
    code = (
        "import pkgutil, importlib, sys, srdata\n"
        "for m in pkgutil.walk_packages(srdata.__path__, 'srdata.'):\n"
        "    importlib.import_module(m.name)\n"
        "from srdata.cli import main\n"
        "assert main(['build', '--help']) == 0 and main(['inspect', '--help']) == 0\n"
        "bad = sorted(n for n in sys.modules if n == 'paddle' or n.startswith(('paddle.', 'sr_train')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

