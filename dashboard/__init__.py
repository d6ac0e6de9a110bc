"""Streamlit pieces of the dashboard (the pages stay thin; logic and figures live in learndrop)."""
