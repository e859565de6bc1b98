"""A sample downstream consumer of registration events (the student information system)."""
