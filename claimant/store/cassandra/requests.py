"""Scheduling requests: create, save, read and list them."""

from __future__ import annotations

import json

from claimant.model import AlreadyExists, NotFound, Request, StoreUnavailable, new_uuid
from claimant.model.codec import request_from_dict, request_to_dict
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.consumers import Consumers
from claimant.store.cassandra.errors import _uncut


class Requests(Consumers):
    # -- requests ----------------------------------------------------------------------
    @_uncut
    def create_request(self, request: Request) -> Request:
        # The uuid is claimed by one LWT in ``request_ids``; the record itself
        # is written plainly, as every later save_request is: a partition
        # written both ways can shadow a later plain save under clock skew.
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        owner = new_uuid()
        # Homed in the cell it is confined to, else this service's: a cell
        # cut off from the others still takes requests (docs/cells.md).
        home = saved.cell or self.local_cell()
        try:
            applied, _ = self._lwt(q.CLAIM_REQUEST_ID, [saved.uuid, owner, now], cell=home)
        except StoreUnavailable:
            # The outcome may be unknown: a SERIAL read says whether ours landed.
            rows = self._run(q.REQUEST_ID_OWNER, [saved.uuid], serial=True, cell=home)
            if not rows or rows[0].owner != owner:
                raise
            applied = True
        if not applied:
            raise AlreadyExists(f"request {saved.uuid} already exists", uuid=saved.uuid)
        self._write_request(saved)
        return saved

    @_uncut
    def save_request(self, request: Request) -> Request:
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        self._write_request(saved)
        return saved

    def _write_request(self, saved: Request) -> None:
        # In its home cell (create_request); read back by _in_any_cell.
        self._run(
            q.SAVE_REQUEST,
            [saved.uuid, saved.status.value, saved.created_at, json.dumps(request_to_dict(saved))],
            cell=saved.cell or self.local_cell(),
        )

    def get_request(self, uuid: str) -> Request:
        rows = self._in_any_cell(q.GET_REQUEST, [uuid])
        if not rows:
            raise NotFound(f"no request {uuid}", kind="request", uuid=uuid)
        return request_from_dict(json.loads(rows[0].body))

    def list_requests(
        self, *, status: str | None = None, project_id: str | None = None, limit: int = 100
    ) -> list[Request]:
        rows = [r for r in self._run(q.ALL_REQUESTS) if status is None or r.status == status]
        rows.sort(key=lambda r: r.created_at or 0.0, reverse=True)
        out: list[Request] = []
        for row in rows:
            if len(out) >= limit:
                break
            request = request_from_dict(json.loads(row.body))
            if project_id is None or request.project_id == project_id:
                out.append(request)
        return out
