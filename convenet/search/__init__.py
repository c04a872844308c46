"""From images to ranked neighbours: features, recipes, distances, ranking, evaluation."""
