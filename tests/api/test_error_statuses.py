"""HTTP statuses belong to the API layer (issue 13): one table
(``claimant.api.errors.STATUS_BY_ERROR``) maps every claimant error to its
status for the native API and, through ``map_store_error``, for Placement;
the model keeps only the stable codes. What a client sees is pinned here."""

from __future__ import annotations

import inspect

import pytest

from claimant import plugins
from claimant.api import auth
from claimant.api.errors import status_of
from claimant.api.placement import errors as placement_errors
from claimant.api.placement.framework import map_store_error
from claimant.model import errors
from claimant.model.errors import ClaimantError


def _subclasses(*modules: object) -> list[type[ClaimantError]]:
    return [
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ClaimantError) and cls is not ClaimantError
    ]


@pytest.mark.parametrize("cls", _subclasses(errors, auth, plugins), ids=lambda c: c.__name__)
def test_every_claimant_error_has_a_status(cls: type[ClaimantError]) -> None:
    assert status_of(cls("x")) != 500


@pytest.mark.parametrize(
    ("error", "native", "placement"),
    [
        (errors.InvalidInput("x"), 400, (400, placement_errors.DEFAULT)),
        (plugins.UnknownPlugin("x"), 400, (400, placement_errors.DEFAULT)),
        (errors.NotFound("x"), 404, (404, placement_errors.DEFAULT)),
        (errors.AlreadyExists("x"), 409, (409, placement_errors.DEFAULT)),
        (errors.GenerationConflict("x"), 409, (409, placement_errors.CONCURRENT_UPDATE)),
        (
            errors.ConsumerGenerationConflict("x"),
            409,
            (409, placement_errors.CONCURRENT_UPDATE),
        ),
        (errors.NoValidHost("x"), 409, (409, placement_errors.DEFAULT)),
        (errors.StoreUnavailable("x"), 503, (503, placement_errors.DEFAULT)),
        (errors.CellUnavailable("x"), 503, (503, errors.CELL_UNAVAILABLE)),
        (errors.DeadlineExceeded("x"), 503, (503, placement_errors.DEADLINE_EXCEEDED)),
        (auth.Unauthorized("x"), 401, (409, placement_errors.DEFAULT)),
        (auth.Forbidden("x"), 403, (409, placement_errors.DEFAULT)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_the_statuses_on_the_wire(
    error: ClaimantError, native: int, placement: tuple[int, str]
) -> None:
    assert status_of(error) == native
    mapped = map_store_error(error)
    assert (mapped.status, mapped.code) == placement


def test_the_model_names_no_http_status() -> None:
    source = inspect.getsource(errors)
    assert not any(f" {s}" in source for s in ("400", "404", "409", "503", "422"))
