"""What the gateway tells a node it has stored: the node deletes an outbox row only then."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from edge.contract.base import COUNTER_MAX, Payload

# A node's outbox database, told apart from the one before it: a node whose state was
# wiped counts seq from 1 again, and a receipt for the old outbox must not delete new rows.
OutboxId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class Receipt(Payload):
    """Retained on `receipt/<node>`: how far the gateway has stored one outbox.

    A broker's PUBACK only says the broker took a message; a broker restarted without its
    shared subscriptions, or a gateway that was away, drops what it was given. So a node
    keeps each event until a receipt covers it, and sends again what is not covered.
    """

    outbox_id: OutboxId = Field(description="the outbox this receipt is for (from its Birth)")
    stored_seq: int = Field(
        ge=0, le=COUNTER_MAX,
        description="every event of this outbox with this seq or lower is stored",
    )  # fmt: skip
    resend: bool = Field(
        False,
        description="the gateway misses events above stored_seq that the node sent (they "
        "went to nobody): send every unconfirmed one again",
    )  # fmt: skip
    at: AwareDatetime = Field(description="gateway clock")
