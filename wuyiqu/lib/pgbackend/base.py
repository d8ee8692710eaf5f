"""Django's PostgreSQL backend for a schema keyed by district.

Django groups a query by a model's primary key alone when it selects the model's columns
(``GROUP BY "units_household"."id"``): PostgreSQL accepts that because every other column depends on
the table's primary key. A district-keyed table (one with a ``units.models.DistrictCodeField``) has the primary
key ``(district_code, id)`` in the database — Citus wants its distribution column in every key
(docs/scaling.md, "Running on Citus") — while the model's key is ``id``; grouped by ``id`` alone,
PostgreSQL refuses the other columns ("must appear in the GROUP BY clause"). For those models this
backend lets Django list the columns it groups by, as it does on SQLite; every other model and
statement is Django's.
"""

from django.db.backends.postgresql import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model):
        return super().allows_group_by_selected_pks_on_model(model) and not any(
            getattr(field, "district_key", False) for field in model._meta.concrete_fields)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
