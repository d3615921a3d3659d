"""Config files (`genjax.config.files`): every failure is one line and exit 2, in the real CLI.

Each failing case runs `python -m genjax.main` in a subprocess with a config written to
tmp_path and checks: exit status 2, exactly one stderr line starting `genjax: error:`, the
expected content (the file and line for exceptions raised in user code), and no workdir.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP = "experiments/mnist1d_mlp.py"


def genjax(*args, cwd=ROOT, timeout=240):
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def write(folder, name, text):
  path = folder / name
  path.write_text(textwrap.dedent(text).lstrip("\n"))
  return path


def one_line_error(out, workdir) -> str:
  """The single `genjax: error:` line of a run that failed with status 2 and wrote nothing."""
  assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr[-3000:]
  assert lines[0].startswith("genjax: error: "), lines[0]
  assert not os.path.exists(workdir), "the workdir was created"
  return lines[0].removeprefix("genjax: error: ")


def train_fails(tmp_path, config, *extra) -> str:
  workdir = tmp_path / "run"
  out = genjax("train", f"--config={config}", f"--workdir={workdir}", "--progress=false", *extra)
  return one_line_error(out, workdir)


def sweep_fails(tmp_path, config, *extra) -> str:
  workdir = tmp_path / "sw"
  out = genjax("sweep", f"--config={config}", f"--workdir={workdir}", "--progress=false", *extra)
  return one_line_error(out, workdir)


# ------------------------------------------------ the config file itself ---

def test_syntax_error_names_file_and_line(tmp_path):
  config = write(tmp_path, "my_config.py", """
      import ml_collections

      def get_config(:
        return ml_collections.ConfigDict()
      """)
  assert train_fails(tmp_path, config) == "my_config.py:3: SyntaxError: invalid syntax"


def test_name_error_in_get_config_names_file_and_line(tmp_path):
  config = write(tmp_path, "my_config.py", """
      from genjax.config import defaults


      def get_config():
        config = defaults.get_config()
        config.num_epochs = x
        return config
      """)
  assert train_fails(tmp_path, config) == (
      "my_config.py:6: NameError: name 'x' is not defined")


def test_space_form_config_flag_loads_the_same_way(tmp_path):
  config = write(tmp_path, "my_config.py", """
      def get_config():
        return {}["missing"]
      """)
  workdir = tmp_path / "run"
  out = genjax("train", "--config", str(config), f"--workdir={workdir}")
  assert one_line_error(out, workdir) == "my_config.py:2: KeyError: 'missing'"


def test_other_exception_at_import_names_file_and_line(tmp_path):
  config = write(tmp_path, "my_config.py", """
      import ml_collections
      raise RuntimeError("no GPU quota\\nfor this project")
      """)
  assert train_fails(tmp_path, config) == (
      "my_config.py:2: RuntimeError: no GPU quota for this project")


def test_missing_import_names_file_line_and_fix(tmp_path):
  config = write(tmp_path, "my_config.py", """
      import ml_collections
      import no_such_module_for_genjax


      def get_config():
        return ml_collections.ConfigDict()
      """)
  line = train_fails(tmp_path, config)
  assert line.startswith("my_config.py:2: ModuleNotFoundError: No module named "
                         "'no_such_module_for_genjax'"), line
  assert "next to my_config.py" in line


def test_exception_in_a_module_beside_the_config_names_that_module(tmp_path):
  write(tmp_path, "helpers.py", """
      def widths():
        return (16,) + 1
      """)
  config = write(tmp_path, "my_config.py", """
      import helpers
      from genjax.config import defaults


      def get_config():
        config = defaults.get_config()
        config.model.widths = helpers.widths()
        return config
      """)
  line = train_fails(tmp_path, config)
  assert line.startswith("helpers.py:2: TypeError: can only concatenate tuple"), line


def test_syntax_error_in_a_module_beside_the_config(tmp_path):
  write(tmp_path, "helpers.py", "x = = 1\n")
  config = write(tmp_path, "my_config.py", "import helpers\n")
  assert train_fails(tmp_path, config) == "helpers.py:1: SyntaxError: invalid syntax"


def test_get_config_returning_a_dict(tmp_path):
  config = write(tmp_path, "my_config.py", """
      def get_config():
        return {"num_epochs": 1}
      """)
  line = train_fails(tmp_path, config)
  assert line.startswith("my_config.py: get_config() returned a dict, not an "
                         "ml_collections.ConfigDict;"), line
  assert "ml_collections.ConfigDict(d)" in line


def test_no_get_config(tmp_path):
  config = write(tmp_path, "my_config.py", """
      def get_confg():
        return None
      """)
  line = train_fails(tmp_path, config)
  assert line.startswith("my_config.py has no get_config()"), line
  assert "get_confg" in line and "bad config override" not in line


def test_get_config_argument_mismatch(tmp_path):
  config = write(tmp_path, "my_config.py", """
      from genjax.config import defaults

      def get_config():
        return defaults.get_config()
      """)
  line = train_fails(tmp_path, f"{config}:cnn")
  assert line.startswith("my_config.py: get_config() takes no argument") and ":cnn" in line


def test_not_a_python_file(tmp_path):
  config = write(tmp_path, "my_config.yaml", "num_epochs: 1\n")
  line = train_fails(tmp_path, config)
  assert "my_config.yaml is not a Python file" in line and "get_config()" in line


def test_missing_config_file(tmp_path):
  line = train_fails(tmp_path, tmp_path / "nowhere.py")
  assert "nowhere.py does not exist" in line and "--config=experiments/" in line


# ------------------------------------------------------- bad overrides ---

@pytest.mark.parametrize("override,needle", [
    ("--config.model.widths=abc", "not one of the numbers"),
    ("--config.nope=1", "config has no key 'nope'"),
    ("--config.model.nme=mlp", "Did you mean 'name'?"),
    ("--config.batch_size=x", "invalid literal for int()"),
    ("--config.checkpoint.enabled=maybe", "Non-boolean argument"),
])
def test_bad_override_names_the_override_and_the_fix(tmp_path, override, needle):
  line = train_fails(tmp_path, MLP, override)
  assert line.startswith(f"bad config override {override}: "), line
  assert needle in line and ("check the key" in line or "e.g. --config." in line), line


# --------------------------------------------------------------- sweeps ---

def test_sweep_range_with_zero_step(tmp_path):
  line = sweep_fails(tmp_path, MLP, "--sweep=seed=range(1,5,0)")
  assert line.startswith("--sweep seed: range step must not be 0"), line


@pytest.mark.parametrize("value", ["linspace(0,1,2.5)", "range(1,2,3,4)", "range(0.5,3)",
                                   "logspace(0,inf,3)"])
def test_sweep_bad_range_arguments(tmp_path, value):
  line = sweep_fails(tmp_path, MLP, f"--sweep=model.dropout={value}")
  assert line.startswith("--sweep model.dropout: ") and value in line, line


def test_get_sweep_that_raises_names_file_and_line(tmp_path):
  config = write(tmp_path, "my_config.py", """
      from genjax.config import defaults


      def get_config():
        return defaults.get_config()


      def get_sweep():
        rates = []
        return [{"optimizer.learning_rate": 1 / len(rates)}]
      """)
  assert sweep_fails(tmp_path, config) == "my_config.py:10: ZeroDivisionError: division by zero"


@pytest.mark.parametrize("body,needle", [
    ("return {'model.dropout': [0.0, 0.2]}", "returned a dict, read as {name: point}, but its "
     "value for 'model.dropout' is a list"),
    ("return [('model.dropout', 0.0)]", "get_sweep() point 0 is a tuple"),
    ("return None", "get_sweep() returned NoneType"),
])
def test_get_sweep_with_a_wrong_shape(tmp_path, body, needle):
  config = write(tmp_path, "my_config.py", f"""
      from genjax.config import defaults

      def get_config():
        return defaults.get_config()

      def get_sweep():
        {body}
      """)
  line = sweep_fails(tmp_path, config)
  assert line.startswith("my_config.py: ") and needle in line, line


@pytest.mark.parametrize("text", ["", "{'config': {}", "[1, 2]", "{'config': {}, 'points': 3}",
                                  "{'points': [{}]}"])
def test_a_damaged_group_file_is_one_line(tmp_path, text):
  group = tmp_path / "group00.config"
  group.write_text(text)
  out = genjax("group", str(group), f"--workdir={tmp_path / 'g'}", "--progress=false")
  line = one_line_error(out, tmp_path / "g")
  assert f"sweep group file {group}" in line and "rerun the sweep" in line, line


@pytest.mark.parametrize("flag", ["--zip_points=model.dropout=0.1", "--resolved_config=x"])
def test_group_internals_are_not_sweep_flags(tmp_path, flag):
  line = sweep_fails(tmp_path, MLP, flag)   # a group's points and config travel in its file
  assert "Unknown command line flag" in line, line
  out = genjax("sweep", "--helpfull")
  assert "zip_points" not in out.stdout + out.stderr
  assert "resolved_config" not in out.stdout + out.stderr


# ----------------------------------------------------- working configs ---

PENALTY = """
    import jax.numpy as jnp
    from genjax.optim import penalties


    @penalties.register("cfgtest_quartic")
    def cfgtest_quartic(w):
      \"\"\"R(w) = sum w^4.\"\"\"
      return jnp.sum(w ** 4)
    """

CONFIG = """
    import my_penalties  # beside this file: no PYTHONPATH needed
    from genjax.config import defaults
    from genjax.optim import penalties


    @penalties.register("cfgtest_inline")   # defined in the config file itself
    def cfgtest_inline(w):
      return (w ** 2).sum()


    def get_config():
      config = defaults.get_config()
      config.num_epochs = 1
      config.model.widths = (16,)
      config.checkpoint.enabled = False
      config.penalties.cfgtest_quartic.strength = 1e-4
      config.penalties.cfgtest_inline.strength = 1e-4
      return config


    def get_sweep():
      return [{"penalties.cfgtest_quartic.strength": 0.0},
              {"penalties.cfgtest_quartic.strength": 1e-3}]
    """


@pytest.mark.slow
def test_config_importing_a_penalty_beside_it_trains(tmp_path):
  write(tmp_path, "my_penalties.py", PENALTY)
  config = write(tmp_path, "my_config.py", CONFIG)
  workdir = tmp_path / "run"
  out = genjax("train", f"--config={config}", f"--workdir={workdir}", "--progress=false",
               cwd=str(tmp_path.parent))   # neither ROOT nor the config's folder
  assert out.returncode == 0, out.stderr[-3000:]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["penalties"]["cfgtest_quartic"]["strength"] == 1e-4
  assert json.loads((workdir / "results.json").read_text())["epochs_run"] == 1


@pytest.mark.slow
def test_config_with_a_penalty_and_get_sweep_sweeps(tmp_path):
  write(tmp_path, "my_penalties.py", PENALTY)
  config = write(tmp_path, "my_config.py", CONFIG)
  workdir = tmp_path / "sw"
  out = genjax("sweep", "--config", str(config), f"--workdir={workdir}", "--progress=false")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "already registered" not in out.stderr
  rows = (workdir / "sweep.csv").read_text().splitlines()
  assert len(rows) == 3, rows


# ------------------------------------------------------------ in-process ---

def test_load_executes_once_and_keeps_the_path(tmp_path, monkeypatch):
  from genjax.config import files as config_file
  monkeypatch.setattr(sys, "path", list(sys.path))   # load() puts tmp_path first
  from genjax.errors import ConfigError

  counter = tmp_path / "executions.txt"
  config = write(tmp_path, "once.py", f"""
      import ml_collections
      with open({str(counter)!r}, "a") as f:
        f.write("x")


      def get_config(arg="small"):
        return ml_collections.ConfigDict({{"size": arg}})


      def get_sweep():
        return [{{"size": "big"}}]
      """)
  cfg, module = config_file.load(f"{config}:tiny")
  assert cfg.size == "tiny" and config_file.loaded_path() == str(config)
  assert config_file.loaded_spec() == f"{config}:tiny"
  assert config_file.module_for(str(config)) is module
  assert config_file.load(str(config))[0].size == "small"
  assert config_file.optional_call(module, "get_sweep", "tiny") == [{"size": "big"}]
  assert counter.read_text() == "x"                   # executed once, for all of the above
  assert sys.modules[module.__name__] is module
  with pytest.raises(ConfigError, match=r"^cannot load --config=.*does not exist"):
    config_file.load(str(tmp_path / "absent.py"))


def test_register_same_function_twice_replaces_other_function_raises():
  from genjax.optim import penalties

  source = "def cfgtest_twice(w):\n  return w.sum()\n"
  fns = []
  for _ in range(2):  # the same file executed twice: two function objects, one origin
    namespace = {}
    exec(compile(source, "/tmp/cfgtest_same_file.py", "exec"), namespace)
    fns.append(namespace["cfgtest_twice"])
  try:
    penalties.register("cfgtest_twice")(fns[0])
    penalties.register("cfgtest_twice", scale=2.0)(fns[1])    # replaced, silently
    assert penalties.get("cfgtest_twice").fn is fns[1]
    assert penalties.get("cfgtest_twice").fields == {"scale": 2.0}

    def cfgtest_twice(w):  # another function under the taken name
      return w.sum()
    with pytest.raises(ValueError, match="already registered"):
      penalties.register("cfgtest_twice")(cfgtest_twice)
  finally:
    penalties.unregister("cfgtest_twice")
