"""The README's first example runs as written on the bundled MiniLM-L6 and prints the budget it shows."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    first = blocks[0]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(first, "README.md", "exec"), {})
    # The README shows this line as the example's output; the counts follow from r * (384 + 384).
    assert "adapters by level: global 12,288, mid 18,432, layer 18,432 || LoRA r=8: 73,728" in output.getvalue()
    assert "trainable params: 49,922" in output.getvalue()
