"""Measuring a sharded model: every rank runs rank zero's forward passes, rank zero does the rest.

With FSDP, DeepSpeed ZeRO-3 or tensor parallelism (Lightning's ``FSDPStrategy``,
``DeepSpeedStrategy`` at stage 3, ``ModelParallelStrategy``) each rank holds a shard of the
parameters, and a forward pass gathers them with collectives every rank must join: rank zero
cannot run the probe alone (it would wait for ever). There, a measurement is *led* by rank zero:

- rank zero runs the monitor's ``measure`` as in the unsharded case (corpus, tokenization,
  regression), but its probe model (:class:`LeaderProbe`) first sends each pass — the method
  (``logits`` or ``forward``), the token ids and the options — to the other ranks;
- every other rank :func:`follow`\\ s: it runs the same pass, with the same inputs, on its own
  shard and discards the output, until rank zero says the measurement is done;
- rank zero's numbers are then broadcast, as in the unsharded case.

So the passes and their inputs are identical on every rank, and only rank zero loads the corpus and
fits the regression. A plain DDP or single-process run is not sharded (:func:`is_sharded` is False)
and measures exactly as before, with no message sent.

FSDP1 (``FullyShardedDataParallel``, Lightning's ``FSDPStrategy``) gathers parameters only in its
wrapper's ``forward``, which the probe (calling the model inside the LightningModule) never runs;
there every rank also holds the whole parameters while the measurement runs
(:func:`full_parameters`). FSDP2 (``fully_shard``) and ZeRO-3 gather in each module's own hooks.

Limits: a pass that fails on one rank only (out of memory on a follower) leaves the other ranks
waiting in the pass's collective until the process group's timeout, as any failing forward pass of
a sharded model does. Inputs travel as pickled CPU tensors (one broadcast per pass: the PPP pass
over Natural Stories sends ~300 kB in all).
"""

from __future__ import annotations

import contextvars
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from phasewatch.models import ProbeModel

log = logging.getLogger("phasewatch")

#: Lightning strategies whose parameters are sharded (matched by class name, so that importing
#: this module imports neither DeepSpeed nor FSDP; subclasses count).
SHARDED_STRATEGIES = ("FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy")

#: What rank zero sends when its measurement is over (after the last pass, or after a failure).
DONE = "phasewatch/sharded-measurement-done"

#: Where rank zero's probe sends each pass while a led measurement runs (None: not leading).
_send: contextvars.ContextVar[Callable[[Any], Any] | None] = contextvars.ContextVar(
    "phasewatch_sharded_send", default=None
)


def is_sharded(trainer: Any, pl_module: nn.Module) -> bool:
    """Whether a forward pass of ``pl_module`` needs every rank: a sharding strategy or sharded
    parameters, with more than one process. DeepSpeed counts only at ZeRO stage 3 (stages 1–2
    shard the optimizer state, not the parameters)."""
    if int(getattr(trainer, "world_size", 1)) < 2:
        return False
    strategy = getattr(trainer, "strategy", None)
    names = {cls.__name__ for cls in type(strategy).__mro__}
    if "DeepSpeedStrategy" in names:
        return bool(getattr(strategy, "zero_stage_3", True))
    if names.intersection(SHARDED_STRATEGIES):
        return True
    return has_sharded_parameters(pl_module)


def has_sharded_parameters(module: nn.Module) -> bool:
    """Whether ``module`` holds a DTensor parameter (FSDP2, tensor parallel), an FSDP1 wrapper or
    a DeepSpeed ZeRO-3 parameter (``ds_id``)."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without torch.distributed
        return False
    from torch.distributed.fsdp import FullyShardedDataParallel

    if any(isinstance(m, FullyShardedDataParallel) for m in module.modules()):
        return True
    return any(isinstance(p, DTensor) or hasattr(p, "ds_id") for p in module.parameters())


class LeaderProbe(ProbeModel):
    """Rank zero's probe in a led measurement: each pass is sent to the other ranks, then run.

    The input is checked first (a bad input raises here, before any rank starts the pass), then
    ``(method, input ids on CPU, options)`` goes to ``send``; the pass itself is
    :class:`~phasewatch.models.ProbeModel`'s.
    """

    def __init__(self, probe: ProbeModel, send: Callable[[Any], Any]) -> None:
        self.__dict__.update(probe.__dict__)
        self._send = send

    def logits(self, input_ids: Tensor, *, keep: int | None = None) -> Tensor:
        input_ids = self._check_input_ids(input_ids)
        if keep is None or 0 < keep <= input_ids.shape[1]:  # else the pass raises, unsent
            self._send(("logits", input_ids.cpu(), {"keep": keep}))
        return super().logits(input_ids, keep=keep)

    def forward(
        self,
        input_ids: Tensor,
        attention: bool = True,
        *,
        attention_mask: Tensor | None = None,
        logits: bool = True,
    ) -> tuple[Tensor | None, list[Tensor] | None]:
        input_ids = self._check_input_ids(input_ids)
        if self.has_attention or not attention:  # else the pass raises, unsent
            mask = None if attention_mask is None else attention_mask.cpu()
            options = {"attention": attention, "attention_mask": mask, "logits": logits}
            self._send(("forward", input_ids.cpu(), options))
        return super().forward(input_ids, attention, attention_mask=attention_mask, logits=logits)

    __call__ = forward


def led(probe: ProbeModel) -> ProbeModel:
    """``probe`` as a :class:`LeaderProbe` while rank zero leads a measurement, else as is."""
    send = _send.get()
    if send is None or isinstance(probe, LeaderProbe):
        return probe
    return LeaderProbe(probe, send)


@contextmanager
def leading(send: Callable[[Any], Any]) -> Iterator[None]:
    """Rank zero: within, every probe :func:`led` returns sends its passes to ``send``; at exit
    (also on an error) :data:`DONE` is sent, so the followers stop waiting."""
    token = _send.set(send)
    try:
        yield
    finally:
        _send.reset(token)
        send(DONE)


def follow(receive: Callable[[], Any], probe: Callable[[], ProbeModel]) -> int:
    """Any rank but zero: run each pass ``receive`` returns on ``probe()`` (found at the first
    pass) until :data:`DONE`; the outputs are discarded. Returns the passes run.

    A pass that raises here is logged with its traceback and the next one is awaited: rank zero's
    outcome is the measurement's.
    """
    passes, model = 0, None
    while True:
        message = receive()
        if isinstance(message, str) and message == DONE:
            return passes
        method, input_ids, options = message
        try:
            model = probe() if model is None else model
            with torch.no_grad():
                getattr(model, method)(input_ids, **options)
        except Exception:
            log.warning(
                "phasewatch: a sharded measurement's %s pass failed on this rank (rank zero's "
                "result stands):\n%s",
                method,
                traceback.format_exc(),
            )
        passes += 1


def full_parameters(wrapper: nn.Module | None) -> AbstractContextManager:
    """Every rank: FSDP1's ``summon_full_params(wrapper, writeback=False)`` when ``wrapper`` (the
    strategy's model) holds ``FullyShardedDataParallel`` modules, else nothing.

    FSDP1 (Lightning's ``FSDPStrategy``) gathers parameters in its wrapper's ``forward``, which a
    probe calling the model inside the LightningModule never runs: outside it the parameters are
    flat shards ("'weight' must be 2-D"). Within, each rank holds the whole parameters (memory:
    one full copy per rank while the measurement runs).
    """
    if wrapper is None:
        return nullcontext()
    from torch.distributed.fsdp import FullyShardedDataParallel

    if not any(isinstance(m, FullyShardedDataParallel) for m in wrapper.modules()):
        return nullcontext()
    return FullyShardedDataParallel.summon_full_params(wrapper, writeback=False)


def measure_led_by_rank_zero(
    measure: Callable[[], Any],
    probe: Callable[[], ProbeModel],
    *,
    is_zero: bool,
    broadcast: Callable[[Any], Any],
    wrapper: nn.Module | None = None,
) -> tuple | str | None:
    """One measurement of a sharded model on every rank (see the module's docstring).

    Args:
        measure: the monitor's measurement; called on rank zero only.
        probe: finds this rank's probe model (a follower's, at its first pass).
        is_zero: whether this is rank zero.
        broadcast: rank zero's object to every rank (``trainer.strategy.broadcast(obj, src=0)``).
        wrapper: the strategy's model (``trainer.strategy.model``); an FSDP1 one has its
            parameters gathered on every rank around the measurement (:func:`full_parameters`).

    Returns:
        On rank zero, ``measure()``'s result, or the traceback (a string) if it raised; None on
        the other ranks (the caller broadcasts rank zero's result, as for an unsharded model).
    """
    with full_parameters(wrapper):
        if not is_zero:
            follow(lambda: broadcast(None), probe)
            return None
        try:
            with leading(broadcast):
                return measure()
        except Exception:
            return traceback.format_exc()
