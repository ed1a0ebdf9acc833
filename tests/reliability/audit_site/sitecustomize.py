"""Installed in a served subprocess through PYTHONPATH: logs every unpickling to a JSON Lines file.

The reliability suite starts ``churnscale serve`` with this directory first on ``PYTHONPATH`` and
``CHURNSCALE_UNPICKLING_LOG`` naming the file (R12 for the live server).
"""

from __future__ import annotations

import json
import os

_LOG = os.environ.get("CHURNSCALE_UNPICKLING_LOG")

if _LOG:
    from churnscale.unpickling import UnpicklingAudit, UnpicklingEvent

    def _write(event: UnpicklingEvent) -> None:
        line = {
            "module": event.module,
            "name": event.name,
            "trusted": event.trusted,
            "callers": list(event.callers),
            "watched": event.watched(),
        }
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    UnpicklingAudit(on_event=_write).install()
