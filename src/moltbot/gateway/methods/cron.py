"""Cron methods: ``cron.list|status|add|update|remove|run|runs`` (upstream's shapes).

Inputs are normalized as upstream does before they are validated
(:func:`moltbot.automation.jobs.normalize_input`): ISO times for ``at``,
a schedule without ``kind``, ``wakeMode``/``sessionTarget`` defaults on add.
Jobs go out as upstream's ``CronJob``; ``cron.runs`` answers ``{entries}`` of
``CronRunLogEntry``. Every change is on disk when the method answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MethodError, MoltbotError, NotFoundError, UsageError
from moltbot.gateway import protocol
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.subsystems import CRON
from moltbot.validation import ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from moltbot.automation.service import CronService


class _Lenient(Params):
    """Checked by the handler after upstream's normalization."""

    model_config = ConfigDict(extra="allow")


class ListParams(Params):
    includeDisabled: bool | None = None


class _ById(Params):
    id: str | None = Field(default=None, min_length=1)
    jobId: str | None = Field(default=None, min_length=1)

    def job_id(self, method_name: str) -> str:
        found = self.id or self.jobId
        if not found:
            raise MethodError(protocol.INVALID_REQUEST, f"invalid {method_name} params: missing id")
        return found


class UpdateParams(_ById):
    patch: dict[str, Any]


class RunParams(_ById):
    mode: Literal["due", "force"] | None = None


class RunsParams(_ById):
    limit: int | None = Field(default=None, ge=1, le=5000)


async def cron_of(call: MethodCall) -> CronService:
    """The running cron service (waiting briefly while the gateway starts)."""
    service = await call.runtime.started(CRON)
    if service is None:
        reason = call.runtime.subsystem_errors.get("cron", "not running")
        raise MethodError(protocol.UNAVAILABLE, f"cron is unavailable ({reason})", retryable=True)
    return service


def _invalid(method_name: str, exc: Exception) -> MethodError:
    detail = protocol.describe_validation(exc) if isinstance(exc, ValidationError) else str(exc)
    if isinstance(exc, MoltbotError):
        detail = exc.message
    return MethodError(protocol.INVALID_REQUEST, f"invalid {method_name} params: {detail}")


@method("cron.list", params=ListParams, scope="read")
async def cron_list(call: MethodCall, params: ListParams) -> dict[str, Any]:
    service = await cron_of(call)
    return {"jobs": [job.wire() for job in service.scheduler.list(bool(params.includeDisabled))]}


@method("cron.status", scope="read")
async def cron_status(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return (await cron_of(call)).cron_status()


@method("cron.add", params=_Lenient, scope="admin")
async def cron_add(call: MethodCall, params: _Lenient) -> dict[str, Any]:
    from moltbot.automation.jobs import JobInput, normalize_input

    service = await cron_of(call)
    raw = normalize_input(params.model_dump(), defaults=True, now_ms=service.clock.now_ms())
    try:
        data = JobInput.model_validate(raw)
        job = await service.add(data)
    except (ValidationError, UsageError) as exc:
        raise _invalid("cron.add", exc) from None
    return job.wire()


@method("cron.update", params=UpdateParams, scope="admin")
async def cron_update(call: MethodCall, params: UpdateParams) -> dict[str, Any]:
    from moltbot.automation.jobs import JobPatch, normalize_input

    service = await cron_of(call)
    job_id = params.job_id("cron.update")
    raw = normalize_input(params.patch, defaults=False, now_ms=service.clock.now_ms())
    try:
        patch = JobPatch.model_validate(raw)
        job = await service.update(job_id, patch)
    except (ValidationError, UsageError) as exc:
        raise _invalid("cron.update", exc) from None
    except NotFoundError as exc:
        raise MethodError(protocol.INVALID_REQUEST, exc.message) from None
    return job.wire()


@method("cron.remove", params=_ById, scope="admin")
async def cron_remove(call: MethodCall, params: _ById) -> dict[str, Any]:
    service = await cron_of(call)
    return await service.remove(params.job_id("cron.remove"))


@method("cron.run", params=RunParams, scope="admin")
async def cron_run(call: MethodCall, params: RunParams) -> dict[str, Any]:
    service = await cron_of(call)
    try:
        return await service.run(params.job_id("cron.run"), params.mode or "due")
    except NotFoundError as exc:
        raise MethodError(protocol.INVALID_REQUEST, exc.message) from None


@method("cron.runs", params=RunsParams, scope="read")
async def cron_runs(call: MethodCall, params: RunsParams) -> dict[str, Any]:
    from moltbot.automation.jobs import check_job_id

    service = await cron_of(call)
    job_id = params.job_id("cron.runs")
    try:
        check_job_id(job_id)
    except NotFoundError as exc:
        raise MethodError(protocol.INVALID_REQUEST, exc.message) from None
    return {"entries": await service.runs(job_id, params.limit or 200)}
