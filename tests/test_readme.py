"""The README's first Python example runs as printed and does what its comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_first_example_runs_and_prints_a_good_score():
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    scores = eval(out.getvalue().strip(), {})  # the printed dict
    assert set(scores) == {"loss", "accuracy"} and scores["accuracy"] > 0.9
