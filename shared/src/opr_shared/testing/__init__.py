"""Test support: the pytest plugin giving tests real infrastructure (:mod:`.infra`)
and its Docker backend (:mod:`.containers`)."""
