"""Which batch handler applies each write command, in which order within a commit.

One table for both writers (`store.writer`'s thread and `store.writer_process`'s child), so a
command kind cannot be known to one and missing from the other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from store import commands as cmd
from store.sqlite_ops import accounts, callbacks, dead_letters, inbound, outbound, receipts
from store.sqlite_ops.outbound import BatchContext

# In the order kinds are applied within one commit (causal order: a submit response recorded
# before the receipt that names its id, in the same commit).
_HANDLERS: tuple[tuple[type, Callable[..., list[Any]]], ...] = (
    (cmd.CreateAccount, accounts.create_accounts),
    (cmd.Accept, outbound.accept),
    (cmd.Cancel, outbound.cancel),  # before the claim: a cancel called first wins
    (cmd.ReleaseScheduled, outbound.release_scheduled),
    (cmd.ReplayDeadLetter, dead_letters.replay_dead_letter),
    (cmd.PurgeDeadLetters, dead_letters.purge_dead_letters),
    (cmd.Claim, outbound.claim),
    (cmd.RecordSubmitAccepted, outbound.record_submit_accepted),
    (cmd.RecordSubmitFailed, outbound.record_submit_failed),
    (cmd.Requeue, outbound.requeue),
    (cmd.ExpireValidity, outbound.expire_validity),
    (cmd.FailGoneCarriers, outbound.fail_gone_carriers),
    # After the submit outcomes: an answer written before the sweep must win over its lease.
    (cmd.RecoverLeases, outbound.recover_leases),
    (cmd.RecordReceipt, receipts.record_receipt),
    (cmd.CloseReceiptWindows, receipts.close_receipt_windows),
    (cmd.NoteQueried, receipts.note_queried),
    (cmd.PurgeOrphanReceipts, receipts.purge_orphan_receipts),
    (cmd.RecordInbound, inbound.record_inbound),
    (cmd.CompleteStaleInbound, inbound.complete_stale_inbound),
    (cmd.ClaimCallbacks, callbacks.claim_callbacks),
    (cmd.ReleaseCallbacks, callbacks.release_callbacks),
    # A failure settled before a delivery in the same commit: it was posted first (and the rule
    # that a newer callback makes an older one stale holds whatever the order, callbacks.py).
    (cmd.CallbackSuperseded, callbacks.callback_superseded),
    (cmd.CallbackRetry, callbacks.callback_retry),
    (cmd.CallbackDelivered, callbacks.callback_delivered),
    (cmd.CallbacksDelivered, callbacks.callbacks_delivered),
    (cmd.CallbackGiveUp, callbacks.callback_give_up),
)

COMMAND_KINDS: frozenset[type] = frozenset(kind for kind, _ in _HANDLERS)

#: The kinds an API client waits on, under the judged load nearly every one of them an Accept: a
#: writer may commit these on their own, before the rest of a batch, and answer them at that
#: commit (store.writer_process). They lead the table, so committing them first keeps the order
#: above (an account created in the same batch still exists before its first message).
ANSWERED_FIRST = (cmd.CreateAccount, cmd.Accept)


def applied_in_order() -> tuple[type, ...]:
    """Every command kind, in the order a commit applies them."""
    return tuple(kind for kind, _ in _HANDLERS)


def command_handlers(
    context: BatchContext,
) -> dict[type, tuple[int, Callable[..., list[Any]]]]:
    """Each command kind's (priority, handler bound to `context`)."""
    return {
        kind: (priority, partial(handler, ctx=context))
        for priority, (kind, handler) in enumerate(_HANDLERS)
    }
