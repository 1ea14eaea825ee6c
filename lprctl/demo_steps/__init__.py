"""Steps of the demo, one module per capability."""
