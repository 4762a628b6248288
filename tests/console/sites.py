"""The seeded store and live server the console's browser tests run against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ctxbase


@dataclass
class Site:
    """A live server over a seeded store, and what the tests need to know about it."""

    url: str
    store: ctxbase.Store
    keys: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)
    backend: str = "sqlite-file"

    def console(self, path: str = "/") -> str:
        return f"{self.url}/console{path}"


def seed(store: ctxbase.Store) -> dict[str, Any]:
    """A little of everything, in project ``default``."""
    conversation = store.conversations.create(
        title="Billing drift", agent_id="planner", model="gpt-test", metadata={"topic": "billing"}
    )
    messages = store.messages.append_many(
        conversation.id,
        [
            {"role": "system", "content": "You reconcile invoices."},
            {
                "role": "user",
                "content": "Why is invoice INV-2041 off by 3 cents?",
                "input_tokens": 12,
            },
            {
                "role": "assistant",
                "content": "Rounding happens per line before the total.",
                "thinking": "Look at the rounding mode first.",
                "output_tokens": 9,
                "finish_reason": "stop",
            },
        ],
    )
    quality = store.quality
    quality.add_metric(conversation.id, metric="coherence", value=0.82)
    quality.add_contradiction(
        conversation.id,
        first_message_id=messages[1].id,
        second_message_id=messages[2].id,
        description="Says per line, then per total",
        severity="low",
    )
    quality.add_loop(conversation.id, pattern="Rounding", message_ids=[messages[2].id])
    quality.add_citation(
        conversation.id, message_id=messages[2].id, source_reference="billing/rounding.md"
    )
    memory = store.memories.add(
        "The user drinks green tea in the morning", importance=0.6, agent_id="planner"
    )
    store.memories.add("Invoices round per line", memory_type="fact", importance=0.9)
    first = store.contexts.add("billing/rounding.md", "Round each line.\nThen add.\n")
    second = store.contexts.update(first.id, content="Round each line half-even.\nThen add.\n")
    store.state.put("plan", {"step": 1, "goal": "reconcile"}, namespace="agents/planner")
    store.state.put("budget", 42, namespace="agents")
    store.subscriptions.create(agent_id="auditor", event_types=["invoice.checked"])
    for number in range(3):
        store.events.append("invoice.checked", {"invoice": f"INV-{2040 + number}"})
    return {
        "conversation": conversation.id,
        "memory": memory.id,
        "context": second.id,
        "first_context": first.id,
    }
