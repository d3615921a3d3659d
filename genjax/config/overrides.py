"""`--config.a.b=value` overrides: key checks and value checks, each bad one a one-line
ConfigError naming the override and the fix. Shared by the CLI (`genjax.main`) and the
Python API (`genjax.load_config(spec, overrides=[...])`)."""

from __future__ import annotations

import difflib

from absl import flags

from genjax.errors import ConfigError


def check_key(config, path: str, text: str) -> None:
  """ConfigError naming `text` when `path` is not a field of `config`."""
  import ml_collections
  from ml_collections.config_flags import config_path
  node, parts = config, path.split(".")
  for i, part in enumerate(parts):
    where = ".".join(["config", *parts[:i]])
    if not isinstance(node, ml_collections.ConfigDict):
      try:  # indexing syntax config_path understands, e.g. a.b[0]
        config_path.get_type(path, config)
        return
      except Exception:  # pylint: disable=broad-except
        raise ConfigError(f"bad config override {text}: {where} is a {type(node).__name__}, "
                          f"not a sub-config, so it has no field '{part}'; check the key "
                          "against genjax/config/defaults.py") from None
    if part not in node:
      close = difflib.get_close_matches(part, [str(k) for k in node.keys()], n=1)
      hint = f" (Did you mean '{close[0]}'?)" if close else ""
      raise ConfigError(f"bad config override {text}: {where} has no key '{part}'{hint}; "
                        "check the key against genjax/config/defaults.py")
    node = node[part]


def _example(path: str, old) -> str:
  if isinstance(old, bool):
    return f"--config.{path}={str(not old).lower()}"
  if isinstance(old, tuple):
    return f"--config.{path}='{old!r}'"
  if isinstance(old, str):
    return f"--config.{path}={old or 'NAME'}"
  if isinstance(old, (int, float)):
    return f"--config.{path}={old!r}"
  return f"--config.{path}=VALUE"


def _article(word: str) -> str:
  return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _tuple_mismatch(old, new) -> str | None:
  """Why tuple `new` cannot replace `old`, whose elements are all numbers or all strings."""
  if not isinstance(old, tuple) or not isinstance(new, tuple) or not old:
    return None
  number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  for check, what in ((number, "numbers"), (lambda v: isinstance(v, str), "strings")):
    if all(check(v) for v in old):
      bad = [v for v in new if not check(v)]
      return f"{bad[0]!r} is not one of the {what} it holds" if bad else None
  return None


def guard(flag, config) -> None:
  """Makes a bad value for override flag `flag` a one-line ConfigError naming it."""
  from ml_collections.config_flags import config_path
  parse, path = flag.parse, flag.name.split(".", 1)[1]

  def guarded(argument):
    try:
      old = config_path.get_value(path, config)
    except Exception:  # pylint: disable=broad-except
      old = None
    shown = argument if isinstance(argument, str) else repr(argument)
    kind = type(old).__name__ if old is not None else "value"
    fix = (f"config.{path} holds {_article(kind)} ({old!r}): give {_article(kind)}, e.g. "
           f"{_example(path, old)}")
    try:
      parse(argument)
    except (flags.Error, KeyError, AttributeError, TypeError, ValueError, OverflowError) as e:
      reason = (": ".join(str(a) for a in e.args) if len(e.args) > 1 else str(e))
      prefix = f"flag --{flag.name}={argument}: "
      reason = reason[len(prefix):] if reason.startswith(prefix) else reason
      reason = " ".join(reason.replace("\\n", " ").split()).rstrip(".")
      if reason.startswith("("):  # a ValueError('text', value) shown as a tuple
        import ast
        try:
          reason = ": ".join(str(a) for a in ast.literal_eval(reason))
        except (ValueError, SyntaxError, TypeError):
          pass
      raise ConfigError(f"bad config override --config.{path}={shown}: {reason}; {fix}"
                        ) from None
    try:
      new = config_path.get_value(path, config)
    except Exception:  # pylint: disable=broad-except
      return
    reason = _tuple_mismatch(old, new)
    if reason:  # ml_collections checks a tuple's type, not its elements': ('abc',) for (100, 100)
      raise ConfigError(f"bad config override --config.{path}={shown}: {reason}; {fix}")
  flag.parse = guarded


def apply(config, overrides) -> object:
  """`config` with `overrides` ("a.b=value" strings, the `--config.` prefix optional)
  applied as the CLI applies them; ConfigError (one line) for a bad key or value."""
  from ml_collections import config_flags
  given = []
  for text in overrides:
    if not isinstance(text, str) or "=" not in text:
      raise ConfigError(f"override {text!r} needs KEY=VALUE, e.g. 'num_epochs=2'")
    path, value = text.split("=", 1)
    path = path.strip().removeprefix("--").removeprefix("config.")
    given.append((path, f"--config.{path}={value}"))
  for path, arg in given:
    check_key(config, path, arg)
  values = flags.FlagValues()
  argv = ["genjax"] + [arg for _, arg in given]   # never the process's own command line
  holder = config_flags.DEFINE_config_dict("config", config, flag_values=values,
                                           lock_config=True, sys_argv=argv)
  for name in [n for n in values if n.startswith("config.")]:
    guard(values[name], config)
  try:
    values(argv)
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    reason = " ".join(str(e).replace("\\n", " ").split())
    raise ConfigError(f"bad config override {' '.join(a for _, a in given)}: {reason}; check "
                      "it against genjax/config/defaults.py") from None
  return holder.value
