"""What a model is and how it is built: the registry, builders, weights and their cache."""
