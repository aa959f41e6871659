"""The database: every SQL statement, the schema and its migrations (the only package that speaks SQL)."""
