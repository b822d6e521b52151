# One image for every example service: SERVICE selects users, mailer or notifier.
#   docker build -t flask-hyper-example .
#   docker run -e SERVICE=users -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -p 8000:8000 flask-hyper-example
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# confluent-kafka ships manylinux wheels with librdkafka inside, so no compiler is needed.
COPY setup.cfg pyproject.toml README.md ./
COPY flask_hyper ./flask_hyper
COPY example_app ./example_app
RUN pip install '.[example]' \
    && useradd --create-home --uid 10001 hyper \
    && mkdir -p /data \
    && chown hyper /data

USER hyper

ENV SERVICE=users \
    HYPER_BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=2 \
    EXAMPLE_DB_PATH=/data/service.sqlite3

VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]

# exec makes gunicorn PID 1's replacement, so `docker stop` sends it SIGTERM
# and the workers stop their consumers and flush their producers.
CMD ["sh", "-c", "exec gunicorn -c python:flask_hyper.gunicorn_conf \"example_app.${SERVICE}:create_app()\""]
