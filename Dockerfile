# Baton's production image: gunicorn for the web, the same image for the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 curl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY tomsite ./tomsite
COPY observatories ./observatories
COPY policies ./policies
COPY candidates ./candidates
COPY notifications ./notifications
COPY sharing ./sharing
COPY drills ./drills
COPY templates ./templates
COPY manage.py ./
RUN pip install . && useradd --create-home baton
# collectstatic needs settings but no services: a build-time key that never reaches a container.
RUN DEBUG=0 SECRET_KEY=build-only-not-secret DATABASE_URL=postgres://x@localhost/x python manage.py collectstatic --noinput
USER baton
EXPOSE 8000
CMD ["gunicorn", "tomsite.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
