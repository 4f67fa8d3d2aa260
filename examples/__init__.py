"""User-facing examples: pre-training a reference model, a ported legacy NNCF script, and demo configs."""
