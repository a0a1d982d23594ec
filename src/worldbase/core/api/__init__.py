"""Core HTTP routes: meta (/, /health, /metrics), auth, webhooks, jobs."""
