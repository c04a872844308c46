"""From feature vectors to ranked neighbours: recipes, distances, ranking, calibration,
evaluation, and the FAISS index for large collections."""
