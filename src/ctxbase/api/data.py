"""Declarations of the data operations: conversations, messages, context units,
memories, state, search, events and subscriptions."""

from __future__ import annotations

import uuid
from typing import Any

from ctxbase.api import queries as q
from ctxbase.api.models import Deleted, LastSequence
from ctxbase.api.spec import Arg, Operation, Wire
from ctxbase.records import (
    Ack,
    ContextIn,
    ContextUnit,
    ContextUpdate,
    Conversation,
    ConversationIn,
    ConversationPatch,
    DeadLetter,
    DeadLetterRetry,
    DeadLettersRetried,
    Event,
    EventAppend,
    EventBatch,
    EventPage,
    Memory,
    MemoryChange,
    MemoryIn,
    MemoryPatch,
    Message,
    MessageChange,
    MessageIn,
    MessagePatch,
    Page,
    PendingEvents,
    SearchRequest,
    SearchResult,
    StateEntry,
    StateIn,
    Subscription,
    SubscriptionIn,
)

P = "/projects/{project}"
ID = uuid.UUID | str


def _id(name: str) -> Arg:
    return Arg(name, ID)


ACTOR = Arg("actor", str | None, "header", None, header="X-Ctxbase-Agent")
#: State's path holds its namespace; its version travels in ``If-Match``.
NAMESPACE = Arg("namespace", str, "path", "")
IF_MATCH = Arg("expected_version", int | None, "header", None, header="If-Match")

# A table, one operation per entry, wrapped by hand rather than by the formatter.
# fmt: off
DATA_OPERATIONS = (
    # --- conversations and messages ---
    Operation("conversations.create", "POST", f"{P}/conversations", "write",
        "Start a conversation", result=Conversation, body=ConversationIn, status=201),
    Operation("conversations.list", "GET", f"{P}/conversations", "read",
        "List conversations, newest first", result=Page[Conversation], query=q.ConversationQuery),
    Operation("conversations.get", "GET", f"{P}/conversations/{{conversation_id}}", "read",
        "Get a conversation", result=Conversation, args=(_id("conversation_id"),)),
    Operation("conversations.update", "PATCH", f"{P}/conversations/{{conversation_id}}", "write",
        "Update a conversation", result=Conversation, body=ConversationPatch,
        args=(_id("conversation_id"),),
        example={"title": "Billing drift, solved", "health_score": 92}),
    Operation("conversations.delete", "DELETE", f"{P}/conversations/{{conversation_id}}", "write",
        "Delete a conversation with its messages (their embeddings and edits) and the state "
        "entries and memories it owns",
        args=(_id("conversation_id"),), status=204),
    Operation("messages.append", "POST", f"{P}/conversations/{{conversation_id}}/messages",
        "write", "Append one message (an object) or several (an array), in order", result=Message,
        body=MessageIn, args=(_id("conversation_id"),), status=201),
    Operation("messages.append_many", "POST", f"{P}/conversations/{{conversation_id}}/messages",
        "write", "Append several messages, in order, all or none", result=list[Message],
        args=( _id("conversation_id"), Arg("messages", list[MessageIn], "body"), ), status=201),
    Operation("messages.list", "GET", f"{P}/conversations/{{conversation_id}}/messages", "read",
        "List messages in position order", result=Page[Message], query=q.MessageQuery,
        args=(_id("conversation_id"),)),
    Operation("messages.get", "GET", f"{P}/messages/{{message_id}}", "read", "Get a message",
        result=Message, args=(_id("message_id"),)),
    Operation("messages.update", "PATCH", f"{P}/messages/{{message_id}}", "write",
        "Edit a message's content, thinking or metadata (its position never changes)",
        result=Message, body=MessagePatch, args=(_id("message_id"),), extra=(ACTOR,)),
    Operation("messages.history", "GET", f"{P}/messages/{{message_id}}/history", "read",
        "Every edit of a message, oldest first", result=list[MessageChange],
        args=(_id("message_id"),), wire=Wire(Page[MessageChange])),
    # --- context units ---
    Operation("contexts.add", "POST", f"{P}/contexts", "write",
        "Add a context unit (same content under the same name returns the stored one)",
        result=ContextUnit, body=ContextIn, args=("name", "content"), status=201),
    Operation("contexts.list", "GET", f"{P}/contexts", "read",
        "List latest versions, newest first", result=Page[ContextUnit], query=q.ContextQuery),
    Operation("contexts.get_latest", "GET", f"{P}/contexts/by-name/{{name:path}}", "read",
        "Get the latest version of the unit named `name` (or version `version` of it)",
        result=ContextUnit, args=(Arg("name", str),)),
    Operation("contexts.get_version", "GET", f"{P}/contexts/by-name/{{name:path}}", "read",
        "Get one version of the unit named `name`", result=ContextUnit,
        args=(Arg("name", str), Arg("version", int, "query"))),
    Operation("contexts.get", "GET", f"{P}/contexts/{{context_id}}", "read",
        "Get any version by id", result=ContextUnit, args=(_id("context_id"),)),
    Operation("contexts.update", "PUT", f"{P}/contexts/{{context_id}}", "write",
        "Store a new version after this one (which must be the latest)", result=ContextUnit,
        body=ContextUpdate, args=(_id("context_id"),),
        example={"content": "def total(lines): return sum(l.amount for l in lines)"}),
    Operation("contexts.delete", "DELETE", f"{P}/contexts/{{context_id}}", "write",
        "Delete every version of the unit", args=(_id("context_id"),), status=204),
    Operation("contexts.versions", "GET", f"{P}/contexts/{{context_id}}/versions", "read",
        "Every version of the unit, oldest first", result=list[ContextUnit],
        args=(_id("context_id"),), wire=Wire(Page[ContextUnit])),
    # --- memories ---
    Operation("memories.add", "POST", f"{P}/memories", "write", "Add a memory", result=Memory,
        body=MemoryIn, args=("content",), extra=(ACTOR,), status=201),
    Operation("memories.list", "GET", f"{P}/memories", "read",
        "List unexpired memories, newest first", result=Page[Memory], query=q.MemoryQuery),
    Operation("memories.prune", "POST", f"{P}/memories/prune", "write",
        "Delete the project's expired memories", result=int, wire=Wire(Deleted, "deleted")),
    Operation("memories.get", "GET", f"{P}/memories/{{memory_id}}", "read",
        "Get a memory (counts as an access)", result=Memory, args=(_id("memory_id"),)),
    Operation("memories.update", "PATCH", f"{P}/memories/{{memory_id}}", "write",
        "Update a memory", result=Memory, body=MemoryPatch, args=(_id("memory_id"),),
        extra=(ACTOR,),
        example={"importance": 0.9, "content": "The user drinks green tea now"}),
    Operation("memories.delete", "DELETE", f"{P}/memories/{{memory_id}}", "write",
        "Delete a memory with its history and embeddings", args=(_id("memory_id"),), status=204),
    Operation("memories.history", "GET", f"{P}/memories/{{memory_id}}/history", "read",
        "Every change of a memory, oldest first", result=list[MemoryChange],
        args=(_id("memory_id"),), wire=Wire(Page[MemoryChange])),
    # --- state: the path carries namespace and key, headers carry versions ---
    Operation("state.list", "GET", f"{P}/state", "read", "List entries in a namespace and below",
        result=Page[StateEntry], query=q.StateQuery),
    Operation("state.get", "GET", f"{P}/state/{{path:path}}", "read",
        "Get an entry: `…/state/{namespace…}/{key}`", result=StateEntry, args=(Arg("key", str),),
        extra=(NAMESPACE,), custom_client=True),
    Operation("state.put", "PUT", f"{P}/state/{{path:path}}", "write",
        "Write an entry; `If-Match` makes it compare-and-set (412 on conflict)", result=StateEntry,
        body=StateIn, args=(Arg("key", str), "value"),
        extra=(NAMESPACE, IF_MATCH), custom_client=True),
    Operation("state.delete", "DELETE", f"{P}/state/{{path:path}}", "write",
        "Delete an entry (`If-Match` optional)", args=(Arg("key", str),),
        extra=(NAMESPACE, IF_MATCH), status=204, custom_client=True),
    # --- search ---
    Operation("search", "POST", f"{P}/search", "read",
        "Search messages, context units and memories (vector, text or hybrid)",
        result=SearchResult, body=SearchRequest, args=("query",)),
    # --- events ---
    Operation("events.append", "POST", f"{P}/events", "write",
        "Append one event (an object) or several (an array, or `events` with "
        "`expected_sequence`); 409 when `expected_sequence` is not the stream's last sequence",
        result=Event, body=EventAppend, args=("event_type", "data"), status=201),
    Operation("events.append_many", "POST", f"{P}/events", "write",
        "Append several events at consecutive sequences, all or none", result=list[Event],
        body=EventBatch, args=("events",), status=201,
        example={"events": [{"event_type": "build.started"}, {"event_type": "build.done"}],
                 "expected_sequence": 7}),
    Operation("events.last_sequence", "GET", f"{P}/events/last-sequence", "read",
        "The stream's last sequence (0 when empty)", result=int,
        wire=Wire(LastSequence, "last_sequence")),
    Operation("events.list", "GET", f"{P}/events", "read",
        "Read events after a sequence, in order", result=EventPage, query=q.EventQuery),
    Operation("events.stream", "GET", f"{P}/events/stream", "read",
        "Follow the stream live (SSE): replays from `after` (or `Last-Event-ID`), then sends "
        "each event as it commits",
        result=Any, extra=(Arg("after", int, "query", 0),), custom_client=True),
    # --- subscriptions ---
    Operation("subscriptions.create", "POST", f"{P}/subscriptions", "write",
        "Subscribe an agent; registering its subscription of the same `name` again replaces "
        "it in place (200, cursor kept)",
        result=Subscription, body=SubscriptionIn, status=201),
    Operation("subscriptions.list", "GET", f"{P}/subscriptions", "read", "List subscriptions",
        result=Page[Subscription], query=q.SubscriptionQuery),
    Operation("subscriptions.get", "GET", f"{P}/subscriptions/{{subscription_id}}", "read",
        "Get a subscription", result=Subscription, args=(_id("subscription_id"),)),
    Operation("subscriptions.delete", "DELETE", f"{P}/subscriptions/{{subscription_id}}", "write",
        "Delete a subscription", args=(_id("subscription_id"),), status=204),
    Operation("subscriptions.pending", "GET", f"{P}/subscriptions/{{subscription_id}}/pending",
        "read", "Matching events not yet acknowledged (poll delivery)", result=PendingEvents,
        query=q.PendingQuery, args=(_id("subscription_id"),)),
    Operation("subscriptions.ack", "POST", f"{P}/subscriptions/{{subscription_id}}/ack", "write",
        "Acknowledge every event up to a sequence", result=Subscription, body=Ack,
        args=(_id("subscription_id"), "sequence"),
        example={"sequence": 42}),
    Operation("subscriptions.dead_letters", "GET",
        f"{P}/subscriptions/{{subscription_id}}/dead-letters", "read",
        "Events given up on after the last delivery attempt", result=Page[DeadLetter],
        query=q.PageQuery, args=(_id("subscription_id"),)),
    Operation("subscriptions.retry_dead_letters", "POST",
        f"{P}/subscriptions/{{subscription_id}}/dead-letters/retry", "write",
        "Send dead-lettered events once more, now (`ids`, or the oldest 100; the body may be "
        "left out): delivered ones leave the dead letters, failed ones stay with one more "
        "attempt counted",
        result=DeadLettersRetried, body=DeadLetterRetry, args=(_id("subscription_id"),)),
    Operation("subscriptions.stream", "GET", f"{P}/subscriptions/{{subscription_id}}/stream",
        "read",
        "Receive an `sse` subscription's events live, from its cursor; reconnecting with "
        "`Last-Event-ID` acknowledges everything up to it",
        result=Any, args=(_id("subscription_id"),), on="rest", custom_client=True),
)
# fmt: on
