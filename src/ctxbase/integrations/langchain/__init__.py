"""LangChain adapters over ctxbase: a chat message history kept in conversations, and a
vector store over context units or memories. Needs the ``langchain`` extra:
``pip install 'ctxbase[langchain]'``.

```python
history = CtxbaseChatMessageHistory(store, "session-42")
vectorstore = CtxbaseVectorStore(store, kind="context")
```
"""

from ctxbase.integrations.langchain.history import CtxbaseChatMessageHistory
from ctxbase.integrations.langchain.vectorstore import CtxbaseEmbeddings, CtxbaseVectorStore

__all__ = ["CtxbaseChatMessageHistory", "CtxbaseEmbeddings", "CtxbaseVectorStore"]
