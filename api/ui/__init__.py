"""The web inspector at ``/ui`` (see api/ui/app.py)."""
