"""Database plumbing: URLs, engines, schema, migrations and the per-backend seams."""
