import pytest

from engine.errors import ValidationError
from engine.settings import load_settings


def test_defaults_are_the_embedded_setup():
    settings = load_settings({})
    assert settings.uses_sqlite and settings.uses_fake_redis
    assert settings.public_url == "http://127.0.0.1:8000"


def test_environment_and_public_url_following_the_bind_address():
    settings = load_settings({"QUESTLINE_PORT": "9001", "QUESTLINE_HOST": "0.0.0.0", "QUESTLINE_LOG_FORMAT": "json"})
    assert (settings.port, settings.log_format) == (9001, "json")
    assert settings.public_url == "http://127.0.0.1:9001"
    explicit = load_settings({"QUESTLINE_PUBLIC_URL": "https://loyalty.example.com", "QUESTLINE_PORT": "9001"})
    assert explicit.public_url == "https://loyalty.example.com"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"QUESTLINE_PORT": "eighty"}, "settings"),
        ({"QUESTLINE_PORT": "70000"}, "settings"),
        ({"QUESTLINE_LOG_FORMAT": "xml"}, "settings"),
        ({"QUESTLINE_DATABSE_URL": "typo"}, "QUESTLINE_DATABSE_URL"),
    ],
)
def test_bad_settings_are_named(env, field):
    with pytest.raises(ValidationError) as info:
        load_settings(env)
    assert info.value.field == field


def test_the_test_suite_and_bench_variables_are_not_settings() -> None:
    import pytest

    from engine.errors import ValidationError
    from engine.settings import load_settings

    env = {"QUESTLINE_TEST_REDIS_CLUSTER_URL": "redis+cluster://x:1", "QUESTLINE_BENCH_PG_URL": "postgresql://y"}
    assert load_settings(env).redis_url == "memory://"
    with pytest.raises(ValidationError) as refused:
        load_settings({"QUESTLINE_REDIS_ULR": "redis://typo"})  # a misspelt setting is still refused
    assert refused.value.field == "QUESTLINE_REDIS_ULR"
