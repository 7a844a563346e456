"""Read and command services: the only way the web app and CLI reach the store."""
