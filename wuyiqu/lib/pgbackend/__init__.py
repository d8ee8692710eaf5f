"""wuyiqu's PostgreSQL backend: Django's, with one difference in what it assumes of primary keys
(``base.DatabaseFeatures``). ``settings`` selects it for every ``postgres://`` DATABASE_URL."""
