"""Background workers of the recognition service, run in the app's lifespan."""
