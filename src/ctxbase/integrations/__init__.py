"""Doors for agent frameworks: the MCP server, LangGraph and LangChain adapters."""
