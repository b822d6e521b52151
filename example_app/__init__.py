"""Example hyperservices built with flask-hyper.

Three services, each a Flask app with its own GraphQL schema and SQLite file:

* ``example_app.users`` stores users and publishes ``user.created``;
* ``example_app.mailer`` sends a welcome e-mail for each ``user.created`` and
  publishes ``mail.sent``;
* ``example_app.notifier`` stores an admin notification for both events.

Each package has a ``create_app()`` factory for gunicorn, and
``python -m example_app.demo`` runs the whole system on a local broker.
"""
