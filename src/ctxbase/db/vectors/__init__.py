"""The seam where backends differ for vectors: storage form, indexes and search."""
