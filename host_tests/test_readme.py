# The README's asyncio example runs as written, on CPython and MicroPython (the block is
# read from README.md and executed as a script would be).
from support import skip


def _example(heading):
    with open("README.md") as f:
        text = f.read()
    start = text.index(heading)
    start = text.index("```python\n", start) + len("```python\n")
    return text[start:text.index("```", start)]


def test_readme_asyncio_example_runs_as_written():
    try:
        import asyncio  # noqa: F401
    except ImportError:
        skip("needs asyncio")
    code = _example("## asyncio")
    scope = {"__name__": "__main__"}
    exec(code, scope)
    # the example defines these and ran main() to its end (an exception fails the test)
    assert "Counter" in scope and "main" in scope
