"""Full-text search, one module per backend (each backend's ``text_search`` calls its own).

Queries are natural language: OR semantics over stemmed terms, stop words dropped,
ranked best first. Each returns ``(item id, score)`` pairs, higher is better.
"""
