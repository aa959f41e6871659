"""The database: every SQL statement, the schema and its migrations.

The only package that speaks SQL (an import contract in pyproject.toml).
"""
