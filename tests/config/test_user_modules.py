"""User extensions are found where they are needed: a key that names an unregistered penalty
says which import is missing; `genjax.load_run` re-imports the modules a run recorded, and names
a missing or changed one in one line."""

import os
import subprocess
import sys
import textwrap

import pytest

from genjax.config import defaults
from genjax.errors import ConfigError
from genjax.sweeps import points

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PENALTY = textwrap.dedent('''
    import jax.numpy as jnp
    from genjax.optim import penalties

    @penalties.register("cube_test", eps=0.1)
    def cube_test(w, eps):
      """R(w) = Σ |w|³."""
      return jnp.sum(jnp.abs(w) ** 3)
''')
CONFIG = textwrap.dedent('''
    import cube_penalty  # registers cube_test
    from genjax.config import defaults

    def get_config():
      config = defaults.get_config()
      config.model.widths = (16,)
      config.num_epochs = 2
      config.checkpoint.enabled = False
      config.penalties.cube_test.strength = 1e-3
      return config
''')


def test_a_sweep_key_of_an_unregistered_penalty_says_which_import_is_missing():
  with pytest.raises(ConfigError) as e:
    points.apply_point(defaults.get_config(), {"penalties.nowhere.strength": 1e-3})
  message = str(e.value)
  assert "no penalty 'nowhere' is registered" in message
  assert "import the module that registers it" in message and "l2" in message
  assert "add-a-penalty.md" in message and "\n" not in message


def test_an_unknown_config_key_under_penalties_says_the_same():
  config = defaults.get_config()
  with config.penalties.unlocked():
    config.penalties["nowhere"] = {"strength": 1.0}
  with pytest.raises(ConfigError, match="no penalty 'nowhere' is registered"):
    defaults.validate(config)


def test_a_misspelt_key_elsewhere_still_says_check_the_spelling():
  with pytest.raises(ConfigError, match="check it against genjax/config/defaults.py"):
    points.apply_point(defaults.get_config(), {"model.dropot": 0.1})


def _python(code: str, cwd) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=600)


@pytest.mark.slow
def test_load_run_reimports_the_runs_modules_and_names_a_changed_one(tmp_path):
  (tmp_path / "cube_penalty.py").write_text(PENALTY)
  (tmp_path / "cube_config.py").write_text(CONFIG)
  workdir = tmp_path / "run"
  out = subprocess.run([sys.executable, "-m", "genjax.main", "train",
                        f"--config={tmp_path / 'cube_config.py'}", f"--workdir={workdir}",
                        "--progress=false"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  # A new process that imports nothing of the user's: load_run finds the penalty itself.
  load = (f"import genjax; run = genjax.load_run({str(workdir)!r}); "
          "print(run.config.penalties.cube_test.strength)")
  ok = _python(load, cwd=ROOT)
  assert ok.returncode == 0, ok.stderr[-3000:]
  assert ok.stdout.strip().splitlines()[-1] == "0.001"
  # The module edited since: not imported again; the error names it, in one line.
  (tmp_path / "cube_penalty.py").write_text(PENALTY + "\n# edited\n")
  bad = _python(f"import genjax\nfrom genjax.errors import ConfigError\ntry:\n"
                f"  genjax.load_run({str(workdir)!r})\n"
                "except ConfigError as e:\n  print('ERR', e)\n", cwd=ROOT)
  assert bad.returncode == 0, bad.stderr[-3000:]
  line = [x for x in bad.stdout.splitlines() if x.startswith("ERR")]
  assert len(line) == 1 and "cube_penalty.py" in line[0] and "changed" in line[0], bad.stdout
  # The module deleted: the error names it too.
  (tmp_path / "cube_penalty.py").unlink()
  gone = _python(f"import genjax\nfrom genjax.errors import ConfigError\ntry:\n"
                 f"  genjax.load_run({str(workdir)!r})\n"
                 "except ConfigError as e:\n  print('ERR', e)\n", cwd=ROOT)
  assert gone.returncode == 0, gone.stderr[-3000:]
  line = [x for x in gone.stdout.splitlines() if x.startswith("ERR")]
  assert len(line) == 1 and "cube_penalty" in line[0], gone.stdout
