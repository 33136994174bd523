"""The web page at /ui/ of the API's port (issue 15): a live overview for operators and
a learner view for support, static files and their JSON (docs/ui.md)."""
