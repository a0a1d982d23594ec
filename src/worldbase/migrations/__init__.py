"""The one Alembic history for the whole database."""
