"""ctxbase."""
