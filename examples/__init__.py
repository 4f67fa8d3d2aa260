"""Examples: reference models, pretraining and demo configs for nncf_bootstrapnas."""
