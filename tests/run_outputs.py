"""What a finished CLI run left in its workdir, for tests in several folders."""

import json
import os


def lines(path):
  """The lines of a file, [] when it does not exist."""
  return open(path).read().splitlines() if os.path.exists(path) else []


def results(workdir):
  """results.json without its wall time (which no two runs share)."""
  r = json.load(open(os.path.join(workdir, "results.json")))
  r.pop("wall_time_s")
  return r
