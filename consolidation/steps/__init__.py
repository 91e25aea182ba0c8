"""The consolidation steps: plain functions over a ``ServiceDeps`` and a SQL session.

Each is tested without a broker. ``consolidation.pipeline`` runs them in order for a session,
one transaction per batch of events, and the Celery tasks (or the embedded service's
background thread) run the pipeline.
"""
