"""Configuration: defaults, validation, and docs/configuration.md kept equal to the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpbank.config import DEFAULTS, SINK_SETTINGS, ConfigError, Settings, markdown_table, redis_cluster_nodes

README = Path(__file__).resolve().parents[2] / "README.md"
CONFIGURATION = README.parent / "docs" / "configuration.md"


def test_defaults_work_on_a_developer_machine():
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.partitions, settings.rules.generation, settings.rules.lateness_seconds) == (8, 1, 3600)


@pytest.mark.parametrize(("name", "value"), [("XPBANK_PARTITIONS", "0"), ("XPBANK_GENERATION", "two"), ("XPBANK_STORE", "redis://")])
def test_bad_values_fail_with_the_variables_name(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_configuration_page_is_the_table_the_code_generates():
    text = CONFIGURATION.read_text()
    assert markdown_table() in text, "docs/configuration.md is stale: paste `.venv/bin/python -m xpbank.config` into it"
    for name, default in DEFAULTS.items():
        assert f"| `{name}` | `{default or '(empty)'}` |" in text, name


def test_the_readme_keeps_a_few_settings_as_the_table_says_and_links_the_rest():
    text = README.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `XPBANK_")]
    assert 4 <= len(rows) <= 10 and set(rows) <= set(markdown_table().splitlines())
    assert "](docs/configuration.md)" in text


def test_a_projector_with_its_own_redis_prefix_gets_its_own_consumer_group():
    from xpbank.read.projector import projector_group

    live = Settings.from_env({"XPBANK_TOPIC_PREFIX": "p."})
    second = Settings.from_env({"XPBANK_TOPIC_PREFIX": "p.", "XPBANK_REDIS_PREFIX": "xpbank-g2:"})
    assert projector_group(live) == "p.xpbank-projector"  # the name a running deployment already has
    assert projector_group(second) == "p.xpbank-projector-xpbank-g2:"
    assert projector_group(second).startswith("p.")  # ACLs on the topic prefix still cover it


def test_the_write_back_page_tables_the_sinks_settings_as_the_code_generates():
    text = (README.parent / "docs" / "write-back.md").read_text()
    assert markdown_table(SINK_SETTINGS) in text, "docs/write-back.md: paste config.markdown_table(SINK_SETTINGS)"
    assert sum(name.startswith(SINK_SETTINGS) for name in DEFAULTS) == markdown_table(SINK_SETTINGS).count("| `XPBANK_")


def test_a_redis_cluster_url_names_its_nodes_and_keeps_its_password_out_of_the_display():
    settings = Settings.from_env({"XPBANK_REDIS_URL": "redis+cluster://u:s3cret@10.0.0.1:7000,10.0.0.2:7001"})
    assert settings.redis_cluster and "s3cret" not in settings.redis_display
    assert redis_cluster_nodes(settings.redis_url) == ("redis://u:s3cret@10.0.0.1:7000",
                                                       [("10.0.0.1", 7000), ("10.0.0.2", 7001)])
    assert redis_cluster_nodes("rediss+cluster://h:1/0")[0] == "rediss://h:1"  # TLS; a cluster has database 0 only
    assert not Settings.from_env({}).redis_cluster
    for bad in ("redis+cluster://", "redis+cluster://host", "redis+cluster://h:1,h2:x"):
        with pytest.raises(ConfigError, match="XPBANK_REDIS_URL") as refused:
            Settings.from_env({"XPBANK_REDIS_URL": bad})
        assert "h2" not in str(refused.value)  # the URL (it may hold a password) is never in the message
    ca = Path(__file__)  # any readable file: the CA goes with a TLS URL, clustered or not
    assert Settings.from_env({"XPBANK_REDIS_URL": "rediss+cluster://h:1", "XPBANK_REDIS_CA_FILE": str(ca)}).redis_ca_file
    with pytest.raises(ConfigError, match="rediss://"):
        Settings.from_env({"XPBANK_REDIS_URL": "redis+cluster://h:1", "XPBANK_REDIS_CA_FILE": str(ca)})


def test_the_framework_log_level_is_read_once_into_settings_and_checked():
    assert Settings.from_env({}).framework_loglevel == "WARNING"
    assert Settings.from_env({"XPBANK_FRAMEWORK_LOGLEVEL": "info"}).framework_loglevel == "INFO"
    try:
        Settings.from_env({"XPBANK_FRAMEWORK_LOGLEVEL": "LOUD"})
    except ConfigError as exc:
        assert "XPBANK_FRAMEWORK_LOGLEVEL" in str(exc)
    else:
        raise AssertionError("a log level logging does not know was accepted")
