"""A plugin module that cannot be imported (tests/plugins/test_loader.py)."""

raise RuntimeError("the GPU library is missing")
