"""The command line: `gateway check-config FILE` and startup on a bad config."""

import re
import subprocess

import pytest

from gwtest.gateway import GatewayError, check_binary, free_port
from gwtest.reference import skip_unless_gateway


@pytest.fixture
def binary():
    skip_unless_gateway("tests our gateway's command line, which ActiveMQ does not have")
    try:
        return str(check_binary())
    except GatewayError as e:
        message = str(e)
    pytest.fail(message, pytrace=False)


def run(args, cwd, timeout=20):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


TWO_ERRORS = """\
[server]
data_dir = "data"
bogus_key = 1

[listeners.stomp]
bind = "127.0.0.1:61613"
heartbeat_min_ms = "often"
"""


def error_lines(output, path):
    pat = re.compile(r"^" + re.escape(str(path)) + r":(\d+): ([A-Za-z0-9_.\-\[\]]+): (.+)$")
    return [m.groups() for m in map(pat.match, output.splitlines()) if m]


def test_check_config_reports_every_error_with_line(binary, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TWO_ERRORS)
    res = run([binary, "check-config", str(cfg)], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "panicked" not in out
    errors = error_lines(out, cfg)
    assert len(errors) == 2, f"expected 2 `FILE:LINE: key: message` lines, got:\n{out}"
    (l1, k1, m1), (l2, k2, m2) = errors
    assert (int(l1), int(l2)) == (3, 7), out
    assert k1.endswith("bogus_key"), out
    assert k2.endswith("heartbeat_min_ms"), out
    assert m1.strip() and m2.strip()


def test_check_config_accepts_a_valid_file(binary, tmp_path):
    cfg = tmp_path / "good.toml"
    cfg.write_text(
        f"""\
[server]
data_dir = "{tmp_path / 'data'}"

[listeners.stomp]
bind = "127.0.0.1:{free_port()}"
heartbeat_min_ms = 100

[broker]
max_redeliveries = 6
dead_letter_queue = "ActiveMQ.DLQ"
"""
    )
    res = run([binary, "check-config", str(cfg)], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (tmp_path / "data").exists(), "check-config must not start anything or create the store"


def test_check_config_reports_toml_syntax_error_with_line(binary, tmp_path):
    cfg = tmp_path / "syntax.toml"
    cfg.write_text('[server]\ndata_dir = "x"\n[listeners.stomp\nbind = 1\n')
    res = run([binary, "check-config", str(cfg)], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "panicked" not in out
    assert re.search(re.escape(str(cfg)) + r":3: ", out), out


def test_start_with_invalid_config_fails_cleanly(binary, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TWO_ERRORS)
    res = run([binary, "--config", str(cfg)], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "panicked" not in res.stderr
    assert f"{cfg}:3:" in out and f"{cfg}:7:" in out, out
    assert not (tmp_path / "data").exists()


def test_start_with_missing_config_file_fails_cleanly(binary, tmp_path):
    missing = tmp_path / "nope.toml"
    res = run([binary, "--config", str(missing)], tmp_path)
    assert res.returncode != 0
    assert "panicked" not in res.stderr
    assert str(missing) in res.stdout + res.stderr


def test_start_on_port_in_use_fails_cleanly(binary, gateway, tmp_path):
    cfg = tmp_path / "clash.toml"
    cfg.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data2"}"\n\n[listeners.stomp]\nbind = "127.0.0.1:{gateway.stomp_port}"\n'
    )
    res = run([binary, "--config", str(cfg)], tmp_path)
    assert res.returncode != 0
    assert "panicked" not in res.stderr


def test_unknown_subcommand_or_flag_is_rejected(binary, tmp_path):
    res = run([binary, "--no-such-flag"], tmp_path)
    assert res.returncode != 0
    assert "panicked" not in res.stderr
