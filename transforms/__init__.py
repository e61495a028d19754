"""LibCST codemods that add a learning-rate scheduler to a LEMUR model."""
