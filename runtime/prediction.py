"""The runtime's prediction step: ask the predictor for the next calls at a decision point.

By default predict() runs in a predictor thread with a time limit, so a slow predictor (an HTTP `Client`)
never stalls the agent's event loop; on a virtual-clock loop (the replay simulator) it runs inline.
Whatever the predictor raises, the agent never sees it: that decision point gets no speculation. Of its
answer only the well-formed predictions are kept (`well_formed.py`).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolcast.data.schema import Context
from toolcast.predictor.protocol import CallPrediction, Predictor
from toolcast.runtime.config import RuntimeConfig
from toolcast.runtime.sessions import Session
from toolcast.runtime.well_formed import well_formed

log = logging.getLogger("toolcast.runtime")


class PredictionStep:
    """Runs the predictor for the runtime; holds the predictor threads (started on first use)."""

    def __init__(self, config: RuntimeConfig):
        self.config = config
        self._executor: ThreadPoolExecutor | None = None

    async def predictions(self, predictor: Predictor, s: Session, decision: int,
                          context: Context) -> list[CallPrediction] | None:
        """The well-formed predictions at the session's decision point; None when there are none to act
        on: the predictor failed or took too long (logged), or the agent has moved on meanwhile."""
        name = getattr(predictor, "name", "?")
        try:
            raw = await self._predict(predictor, s, decision, context)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("predictor %s took over %.3g s; no speculation at this point", name,
                        self.config.predict_timeout_s)
            return None
        except BaseException:  # noqa: BLE001 - whatever the predictor raises, the agent never sees it
            log.warning("predictor %s failed; no speculation at this point", name, exc_info=True)
            return None
        if s.closed or s.decision != decision or not s.awaiting_llm:
            return None  # the agent has moved on while we predicted
        return well_formed(raw, self.config.k)

    async def _predict(self, predictor: Predictor, s: Session, decision: int, context: Context) -> Any:
        """The predictor's answer: in a predictor thread with a time limit, or inline on a virtual clock."""
        k = self.config.k
        if not self.config.predict_in_thread or getattr(asyncio.get_running_loop(), "virtual_clock", False):
            return predictor.predict(context, k)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.predict_threads,
                                                thread_name_prefix="toolcast-predict")

        def predict() -> Any:
            if s.closed or s.decision != decision:  # its turn came too late: the agent has moved on
                return []
            return predictor.predict(context, k)

        future = asyncio.wrap_future(self._executor.submit(predict))
        return await asyncio.wait_for(future, self.config.predict_timeout_s)

    def shutdown(self) -> None:
        """Stop the predictor threads (a prediction still running is left to finish, unwaited)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
