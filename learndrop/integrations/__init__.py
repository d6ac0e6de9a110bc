"""Learn&Drop inside other training frameworks: ``integrations.lightning`` (the ``lightning`` extra)."""
