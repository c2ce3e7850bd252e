"""Tests of engine.config: defaults, files, round trips and every kind of error."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.config as config_module
from engine._config_schema import FrozenDict, Section, read_table
from engine.config import (
    BUILTIN_AGENT_TYPES,
    SupervisorConfig,
    ThermalAgentConfig,
    config_from_mapping,
    config_to_dict,
    default_config,
    load_config,
    main,
    render_default_toml,
    render_reference,
    validate,
)
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "config"


def write(tmp_path: Path, text: str, name: str = "swarm.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data, source="swarm.toml")
    return info.value


def all_sections() -> list[type[Section]]:
    """Every section class the config module defines."""
    return [obj for obj in vars(config_module).values()
            if isinstance(obj, type) and issubclass(obj, Section) and obj is not Section]


# --- defaults and the shipped files --------------------------------------------------


def test_defaults_match_the_original_spec() -> None:
    """The seed's keys exist with their documented defaults."""
    cfg = default_config()
    assert (cfg.name, cfg.max_agents, cfg.channel_size) == ("swarm", 32, 262144)
    assert (cfg.monitoring_interval, cfg.optimization_interval) == (1.0, 30.0)
    assert cfg.fault_tolerance and cfg.load_balancing and cfg.auto_scaling
    thresholds = cfg.performance_thresholds
    assert (thresholds.cpu_critical, thresholds.memory_critical,
            thresholds.thermal_critical) == (90.0, 90.0, 85.0)
    assert cfg.supervisor.strategy == "one_for_one"
    assert cfg.agents.compute.count == 2 and cfg.agents["thermal"].emergency_c == 95.0
    assert set(cfg.agents) == set(BUILTIN_AGENT_TYPES) and len(cfg.agents) == 6
    assert cfg.custom_agents == {} and cfg.security.allowed_agent_modules == ()


def test_load_none_gives_defaults() -> None:
    """load_config(None) is the built-in default configuration."""
    assert load_config(None) == default_config()


def test_shipped_swarm_toml_loads_and_equals_defaults() -> None:
    """The repository's swarm.toml is exactly the defaults."""
    assert load_config(REPO / "swarm.toml") == default_config()


def test_shipped_files_are_up_to_date() -> None:
    """swarm.toml and docs/CONFIG.md are what the schema generates (regenerate if not)."""
    assert (REPO / "swarm.toml").read_text(encoding="utf-8") == render_default_toml()
    assert (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8") == render_reference()


def test_every_field_has_a_doc_and_every_section_a_docstring() -> None:
    """Every key is documented, in the reference and in swarm.toml."""
    reference = render_reference()
    toml_text = render_default_toml()
    for cls in all_sections():
        assert cls.__doc__ and cls.__doc__.strip()
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"
            as_table = (f"[{f.name}]", f"[{f.name}.", f".{f.name}]", f".{f.name}.")
            assert f"`{f.name}`" in reference or any(t in reference for t in as_table)
            assert f.name in toml_text


def test_kernel_choices_match_the_kernel_registry() -> None:
    """agents.compute.kernel allows exactly the kernels engine.kernels provides."""
    kernels = pytest.importorskip("engine.kernels")
    assert set(config_module.COMPUTE_KERNELS) == set(kernels.KERNELS)


def test_config_is_frozen_and_hashable() -> None:
    """Sections cannot be changed in place and can be used as dict keys."""
    cfg = default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_agents = 3  # type: ignore[misc]
    assert hash(cfg) == hash(default_config())


# --- round trips and equivalence -----------------------------------------------------


def test_round_trip_through_a_dict() -> None:
    """config_to_dict and config_from_mapping are inverse, for defaults and a custom file."""
    for cfg in (default_config(), load_config(FIXTURES / "custom.toml")):
        plain = config_to_dict(cfg)
        json.dumps(plain)  # plain data only
        assert config_from_mapping(plain) == cfg


def test_json_file_equals_toml_file() -> None:
    """A JSON file with the same keys gives the same configuration."""
    from_toml = load_config(FIXTURES / "custom.toml")
    assert load_config(str(FIXTURES / "custom.json")) == from_toml
    assert from_toml.performance_thresholds.thermal_critical == 80.0
    assert isinstance(from_toml.performance_thresholds.thermal_critical, float)
    echo = from_toml.custom_agents["echo"]
    assert echo.count == 2 and echo.module == "mypkg.agents"
    assert echo.options == {"greeting": "hi", "sizes": (1, 2, 3), "nested": {"deep": True}}
    assert from_toml.agent_counts()["echo"] == 2


def test_acl_rules() -> None:
    """ACL tables: empty allows all; '*' matches any sender or recipient."""
    acl = load_config(FIXTURES / "custom.toml").security.acl
    assert acl.may_send("compute", "learning") and acl.may_send("compute", "orchestrator")
    assert not acl.may_send("compute", "thermal")
    assert acl.may_send("thermal", "orchestrator") and not acl.may_send("thermal", "compute")
    assert acl.may_send("echo", "thermal")
    assert acl.may_control("compute", "learning")  # empty control table
    assert acl.may_control("orchestrator", "compute")


def test_with_overrides_and_replace() -> None:
    """Overrides are validated like a file; dataclasses.replace is validated too."""
    cfg = default_config().with_overrides(
        max_agents=64, **{"supervisor.strategy": "one_for_all"}, bus={"spin_us": 7})
    assert cfg.max_agents == 64 and cfg.supervisor.strategy == "one_for_all"
    assert cfg.bus.spin_us == 7 and cfg.bus.send_timeout == 1.0
    with pytest.raises(ConfigError) as info:
        cfg.with_overrides(**{"supervisor.stratgy": "one_for_all"})
    assert info.value.key == "supervisor.stratgy" and "strategy" in str(info.value)
    replaced = dataclasses.replace(cfg.supervisor, max_seconds=10)
    assert replaced.max_seconds == 10.0 and isinstance(replaced.max_seconds, float)
    with pytest.raises(ConfigError, match="heartbeat_timeout"):
        dataclasses.replace(cfg.supervisor, heartbeat_timeout=0.1)
    with pytest.raises(ConfigError, match="max_agents"):
        dataclasses.replace(cfg, max_agents=2)


def test_sections_built_in_code_are_checked() -> None:
    """Constructing a section with a bad value raises ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        SupervisorConfig(strategy="one_for_some")
    assert info.value.key == "strategy"
    assert ThermalAgentConfig(ambient_c=20).ambient_c == 20.0


# --- errors ---------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest() -> None:
    err = error_of({"max_agent": 8})
    assert err.key == "max_agent" and err.path == "swarm.toml"
    assert "did you mean 'max_agents'?" in str(err)


def test_unknown_nested_key_suggests_the_closest() -> None:
    err = error_of({"agents": {"thermal": {"ambiant_c": 30.0}}})
    assert err.key == "agents.thermal.ambiant_c"
    assert str(err) == ("swarm.toml: agents.thermal.ambiant_c: unknown key 'ambiant_c'; "
                        "did you mean 'ambient_c'?")
    assert error_of({"agents": {"telepathy": {}}}).key == "agents.telepathy"


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    err = error_of({"bus": {"zzz": 1}})
    assert "known keys: request_timeout, send_timeout, spin_us" in str(err)


def test_wrong_type() -> None:
    err = error_of({"supervisor": {"max_seconds": "thirty"}})
    assert err.key == "supervisor.max_seconds"
    assert "expected a number, got string 'thirty'" in str(err)
    assert error_of({"supervisor": 3}).key == "supervisor"
    assert error_of({"security": {"allowed_agent_modules": "mypkg"}}).key == \
        "security.allowed_agent_modules"


def test_bool_is_not_an_int_but_an_int_is_a_float() -> None:
    err = error_of({"max_agents": True})
    assert err.key == "max_agents" and "expected an integer, got boolean true" in str(err)
    assert "expected a number" in str(error_of({"monitoring_interval": False}))
    assert "expected an integer, got float 8.0" in str(error_of({"max_agents": 8.0}))
    assert config_from_mapping({"monitoring_interval": 2}).monitoring_interval == 2.0


def test_out_of_range() -> None:
    err = error_of({"performance_thresholds": {"cpu_critical": 150}})
    assert err.key == "performance_thresholds.cpu_critical"
    assert "150.0 is out of range; allowed: 1 .. 100 %" in str(err)
    assert error_of({"monitoring_interval": float("nan")}).key == "monitoring_interval"
    assert error_of({"max_agents": 10**400}).key == "max_agents"
    assert "a very large integer is out of range" in str(error_of({"max_agents": 10**5000}))
    assert error_of({"monitoring_interval": 10**400}).key == "monitoring_interval"


def test_channel_size_must_be_a_power_of_two() -> None:
    err = error_of({"channel_size": 100000})
    assert err.key == "channel_size" and "not a power of two" in str(err)


def test_bad_choice() -> None:
    err = error_of({"supervisor": {"strategy": "one_for_some"}})
    assert str(err) == ("swarm.toml: supervisor.strategy: 'one_for_some' is not allowed; "
                        "choose one of one_for_one, one_for_all, rest_for_one")


def test_toml_syntax_error_names_the_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "syntax_error.toml")
    err = info.value
    assert err.line == 6 and err.key is None
    assert err.path == str(FIXTURES / "syntax_error.toml")
    assert re.search(r"syntax_error\.toml:6: TOML syntax error: .*\(column \d+\)", str(err))


def test_toml_error_at_end_of_document_names_the_last_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, 'name = "swarm"\nmetrics_host = "abc'))
    assert info.value.line == 2


@pytest.mark.parametrize("name", ["c.toml", "c.json"])
def test_integer_literal_too_long_to_parse(tmp_path: Path, name: str) -> None:
    text = "max_agents = " + "9" * 5000 if name.endswith("toml") else \
        '{"max_agents": ' + "9" * 5000 + "}"
    with pytest.raises(ConfigError, match="Exceeds the limit"):
        load_config(write(tmp_path, text, name))


def test_json_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "syntax_error.json")
    assert info.value.line == 5 and "JSON syntax error" in str(info.value)


def test_json_duplicate_keys_and_non_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate key 'max_agents'"):
        load_config(write(tmp_path, '{"max_agents": 1, "max_agents": 2}', "c.json"))
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(write(tmp_path, "[1, 2]", "c.json"))


def test_missing_file_names_the_path_and_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.path == str(missing) and "No such file or directory" in str(info.value)
    with pytest.raises(ConfigError, match="Is a directory"):
        load_config(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "swarm.toml"
    path.write_bytes(b'name = "a"\nx = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 2


def custom(import_path: str, allowed: list[str], name: str = "echo") -> dict[str, Any]:
    return {"custom_agents": {name: {"import_path": import_path, "count": 1}},
            "security": {"allowed_agent_modules": allowed}}


@pytest.mark.parametrize("bad", ["mypkg.agents", "mypkg.agents:", ":Cls", "my-pkg:Cls",
                                 "mypkg..agents:Cls", "mypkg.class:Cls", "a:B:C", ""])
def test_bad_import_path(bad: str) -> None:
    err = error_of(custom(bad, ["mypkg", "my-pkg", "a"]))
    assert err.key == "custom_agents.echo.import_path"
    assert "is not an import path; write 'package.module:ClassName'" in str(err)


def test_custom_agent_needs_an_import_path() -> None:
    err = error_of({"custom_agents": {"echo": {"count": 1}}})
    assert err.key == "custom_agents.echo.import_path" and "missing" in str(err)


def test_custom_agent_outside_allowed_modules() -> None:
    err = error_of(custom("evil.agents:Agent", ["mypkg"]))
    assert err.key == "custom_agents.echo.import_path"
    assert "module 'evil.agents' is not under security.allowed_agent_modules" in str(err)
    assert error_of(custom("mypkgx.agents:A", ["mypkg"])).key == \
        "custom_agents.echo.import_path"  # a prefix is a package, not a string prefix
    assert "empty" in str(error_of(custom("mypkg:A", [])))
    ok = config_from_mapping(custom("mypkg.sub.mod:Agent.Inner", ["mypkg"]))
    assert ok.custom_agents["echo"].import_path == "mypkg.sub.mod:Agent.Inner"


def test_custom_agent_names() -> None:
    assert error_of(custom("mypkg:A", ["mypkg"], name="compute")).key == "custom_agents.compute"
    assert error_of(custom("mypkg:A", ["mypkg"], name="Bad Name")).key == \
        "custom_agents.Bad Name"


def test_counts_over_max_agents() -> None:
    err = error_of({"max_agents": 4})
    assert err.key == "max_agents"
    assert "4 is less than the sum of the agent counts (7: compute 2, resource 1" in str(err)
    assert config_from_mapping({"max_agents": 7}).max_agents == 7
    with_custom = custom("mypkg:A", ["mypkg"])
    with_custom["custom_agents"]["echo"]["count"] = 2
    assert error_of({"max_agents": 8, **with_custom}).key == "max_agents"


def test_heartbeat_timeout_must_exceed_interval() -> None:
    err = error_of({"supervisor": {"heartbeat_interval": 1.0, "heartbeat_timeout": 1.0}})
    assert err.key == "supervisor.heartbeat_timeout"
    assert "must be greater than heartbeat_interval (1.0)" in str(err)


def test_other_cross_field_checks() -> None:
    assert error_of({"supervisor": {"backoff_initial": 5.0, "backoff_max": 1.0}}).key == \
        "supervisor.backoff_max"
    assert error_of({"performance_thresholds": {"thermal_critical": 100.0}}).key == \
        "agents.thermal.emergency_c"
    err = error_of({"security": {"acl": {"send": {"compute": ["lerning"]}}}})
    assert err.key == "security.acl.send.compute" and "did you mean 'learning'?" in str(err)


def test_all_problems_are_collected(tmp_path: Path) -> None:
    """Loading reports the first problem and lists the others; validate() lists all."""
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "many_problems.toml")
    assert info.value.key == "max_agent"
    assert "and 4 more problems:" in str(info.value)
    data = read_table(str(FIXTURES / "many_problems.toml"))
    keys = [e.key for e in validate(data, source="many_problems.toml")]
    assert keys == ["max_agent", "supervisor.strategy", "supervisor.max_restarts",
                    "bus.spin_us", "agents.thermal.ambiant_c"]
    assert validate(config_to_dict(default_config())) == []


def test_non_mapping_and_non_string_keys() -> None:
    with pytest.raises(ConfigError):
        config_from_mapping([1, 2])  # type: ignore[arg-type]
    assert error_of({1: 2}).path == "swarm.toml"  # type: ignore[dict-item]
    assert error_of({"custom_agents": {"echo": {"import_path": "m:A", "options": {"x": None}}},
                     "security": {"allowed_agent_modules": ["m"]}}).key == \
        "custom_agents.echo.options.x"


def test_frozen_dict() -> None:
    d = FrozenDict({"a": 1})
    assert d == {"a": 1} and hash(d) == hash(FrozenDict({"a": 1})) and "a" in d
    with pytest.raises(TypeError):
        d["b"] = 2  # type: ignore[index]


def test_config_pickles_without_its_cached_hashes() -> None:
    """A config crosses to agent processes by pickle; cached hashes must not travel."""
    cfg = load_config(FIXTURES / "custom.toml")
    hash(cfg)
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy == cfg and copy.custom_agents._hash is None  # type: ignore[attr-defined]


def test_custom_agent_option_kwargs_are_plain() -> None:
    echo = load_config(FIXTURES / "custom.toml").custom_agents["echo"]
    kwargs = echo.option_kwargs()
    assert kwargs == {"greeting": "hi", "sizes": [1, 2, 3], "nested": {"deep": True}}
    assert type(kwargs["sizes"]) is list and type(kwargs["nested"]) is dict


def test_override_through_a_non_table() -> None:
    with pytest.raises(ConfigError) as info:
        default_config().with_overrides(**{"name.x": 1})
    assert info.value.key == "name" and info.value.path == "<overrides>"


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(REPO / "swarm.toml")]) == 0
    assert main(["check", str(FIXTURES / "many_problems.toml")]) == 1
    assert "supervisor.strategy" in capsys.readouterr().err
    assert main(["toml"]) == 0 and capsys.readouterr().out == render_default_toml()
    assert main(["bogus"]) == 2


# --- fuzzing --------------------------------------------------------------------------

KEY_NAMES = sorted({f.name for cls in all_sections() for f in dataclasses.fields(cls)}
                   | {"compute", "thermal", "import_path", "options", "echo", "send", "*"})

scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=12) | st.sampled_from(["one_for_all", "mypkg:A", "triad"]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEY_NAMES) | st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _paths(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(data, dict):
        return [prefix]
    out = [prefix] if prefix else []
    for key, value in data.items():
        out += _paths(value, (*prefix, key))
    return out


DEFAULT_PATHS = _paths(config_to_dict(default_config()))
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _only_config_errors(data: Any) -> None:
    try:
        cfg = config_from_mapping(data)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert config_from_mapping(config_to_dict(cfg)) == cfg


@FUZZ
@given(st.dictionaries(st.sampled_from(KEY_NAMES) | st.text(max_size=8), values, max_size=8))
def test_random_mappings_raise_only_config_errors(data: dict[str, Any]) -> None:
    _only_config_errors(data)


@FUZZ
@given(st.sampled_from(DEFAULT_PATHS), values)
def test_one_random_value_in_a_valid_config_raises_only_config_errors(
    path: tuple[str, ...], value: Any
) -> None:
    data = config_to_dict(default_config())
    _set_path(data, list(path), value)
    _only_config_errors(data)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       st.sampled_from(["c.toml", "c.json"]))
def test_random_bytes_raise_only_config_errors(tmp_path_factory: Any, raw: bytes,
                                               name: str) -> None:
    _load_bytes(tmp_path_factory.getbasetemp() / name, raw)


@FUZZ
@given(st.integers(min_value=0), st.text(max_size=20))
def test_edited_default_file_raises_only_config_errors(tmp_path_factory: Any, at: int,
                                                       insert: str) -> None:
    text = render_default_toml()
    at %= len(text)
    _load_bytes(tmp_path_factory.getbasetemp() / "edited.toml",
                (text[:at] + insert + text[at:]).encode())


def _load_bytes(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.path == str(path)
