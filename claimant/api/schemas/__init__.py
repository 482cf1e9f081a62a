"""Pydantic models of the native API's request bodies, one module per noun,
and the functions that turn model objects into response bodies."""
