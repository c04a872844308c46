"""Images and datasets: decoding, the dataset registry and importers, the feature store."""
