"""Why a layer sees what it sees: layer tables, filters, activations, Grad-CAM, pictures."""
