"""Mail parsing that never raises, HTML to text, and trimming for the model."""
