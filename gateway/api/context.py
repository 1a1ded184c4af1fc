"""What the HTTP layer needs from the rest of the daemon, passed in (never imported globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.clock import utc_now
from gateway.queue_cap import QueueCap
from gateway.validity import Validity
from routing.plan import RouteTable
from store.base import Store
from store.models import Message


@dataclass
class ApiContext:
    store: Store
    routes: RouteTable
    on_accepted: Callable[[Message], None] = lambda message: None
    clock: Callable[[], datetime] = utc_now
    max_body_bytes: int = 65536
    validity: Validity = field(default_factory=Validity)
    queue_cap: QueueCap = field(default_factory=QueueCap)
    accepting: bool = True  # False while stopping: new messages get 503 + Retry-After
    extra: dict = field(default_factory=dict)
