import redis
from django.conf import settings
from django.db import connection


def test_runs_on_real_postgresql_and_redis(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cur:
        cur.execute("select version()")
        assert "PostgreSQL" in cur.fetchone()[0]
    assert redis.Redis.from_url(settings.CLEARSTEM_BROKER_URL).ping()
