"""Labels of a sweep's figures: values with as few digits as keep them apart, point names
shortened to labels that stay distinct, wrapped on lines of `LABEL_CHARS` characters."""

from __future__ import annotations

import numbers
import re

LABEL_CHARS = 40     # one line of a tick or legend label


def is_number(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def fmt(v, digits: int = 3) -> str:
  """A value as a label: floats with `digits` significant digits, ints exactly."""
  if isinstance(v, bool) or v is None or isinstance(v, str):
    return str(v)
  if isinstance(v, numbers.Integral):
    return str(int(v))
  if isinstance(v, numbers.Real):
    return format(float(v), f".{digits}g")
  if isinstance(v, list):
    return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
  if isinstance(v, tuple):
    return "(" + ", ".join(fmt(x, digits) for x in v) + ("," if len(v) == 1 else "") + ")"
  return str(v)


def formatter(values):
  """`fmt` with 3 significant digits, or the fewest more that keep distinct values apart."""
  distinct = list({repr(v): v for v in values}.values())
  for digits in range(3, 18):
    if len({fmt(v, digits) for v in distinct}) == len(distinct):
      break
  return lambda v: fmt(v, digits)


def short_keys(keys) -> dict:
  """Config key -> its last dotted part, or the whole key where two keys share that part."""
  last = [k.split(".")[-1] for k in keys]
  return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def name_label(row: dict) -> str:
  """A point's name, with the floats of an automatic name ('l2=0.00316228') at 3 digits."""
  name = str(row.get("name") or "")
  for v in (row.get("point") or {}).values():
    if is_number(v) and not float(v).is_integer():
      g, short = format(float(v), "g"), fmt(v)
      if g != short:
        name = re.sub(r"(?<==)" + re.escape(g) + r"(?=,|$)", short, name)
  return name


def cut(s: str, limit: int) -> str:
  """`s` in at most `limit` characters, its middle elided."""
  if len(s) <= limit:
    return s
  keep = max(limit - 1, 2)
  head = (keep + 1) // 2
  return s[:head] + "…" + s[len(s) - (keep - head):]


def unique_short(labels: list[str], limit: int) -> tuple[list[str], bool]:
  """(labels of at most `limit` characters that stay distinct, whether they are numbered).

  A label that is too long loses the ','-separated parts common to all labels
  ('l2=0.001,dropout=0.2' style names), then what it must from the prefix (or suffix) common
  to the too-long labels, else those and its middle; if that makes two labels equal, every
  label is numbered ('[3] …') and the caller shows the full names as a key.
  """
  if len(set(labels)) == len(labels) and all(len(s) <= limit for s in labels):
    return list(labels), False
  common = set.intersection(*[set(x.split(",")) for x in labels]) if len(labels) > 1 else set()
  if common:
    def drop(x):
      kept = [part for part in x.split(",") if part not in common]
      return "…," + ",".join(kept) if kept and len(x) > limit else x
    dropped = [drop(x) for x in labels]
    if len(set(dropped)) == len(dropped):
      labels = dropped
  p = s = 0                              # common to the labels that are too long
  long = [x for x in labels if len(x) > limit]
  if len(long) > 1:
    shortest = min(len(x) for x in long)
    while p < shortest and len({x[p] for x in long}) == 1:
      p += 1
    while s < shortest - p and len({x[len(x) - 1 - s] for x in long}) == 1:
      s += 1
  out = []
  for x in labels:
    excess = len(x) - limit + 1          # characters to give up for one '…'
    if excess <= 1:
      pass
    elif p >= excess:                    # from the common prefix, 8 characters before the rest
      end = p - min(8, p - excess)
      x = x[:end - excess] + "…" + x[end:]
    elif s >= excess:                    # from the common suffix, 8 characters after the rest
      start = len(x) - s + min(8, s - excess)
      x = x[:start] + "…" + x[start + excess:]
    else:                                # from both, as much context left of the rest as right
      room = limit - (len(x) - p - s) - (p > 0) - (s > 0)
      left, right = (min(p, room // 2), min(s, room - room // 2)) if room > 0 else (0, 0)
      x = (("…" if p else "") + x[p - left:len(x) - s + right] + ("…" if s else "")
           if p < len(x) - s else x)
      x = cut(x, limit)
    out.append(x)
  if len(set(out)) == len(out):
    return out, False
  return [f"[{i + 1}] " + cut(x, limit - 5) for i, x in enumerate(labels)], True


def wrap(s: str, width: int = LABEL_CHARS) -> str:
  """`s` on lines of at most `width` characters, broken after ',' or spaces where it can be
  (a longer run fills the line it starts on)."""
  lines, line = [], ""
  for tok in re.split(r"(?<=[,\s])", s):
    while tok:
      if len(line) + len(tok.rstrip()) <= width:
        line, tok = line + tok, ""
      elif len(tok.rstrip()) <= width:
        lines.append(line)
        line = ""
      else:
        take = width - len(line)
        lines.append(line + tok[:take])
        line, tok = "", tok[take:]
  lines.append(line)
  return "\n".join(x.rstrip() for x in lines if x.strip()) or s


def row_labels(rows: list[dict], lines: int = 2) -> tuple[list[str], list[str] | None]:
  """(distinct labels of the rows' names, on ≤ `lines` lines of ≤ 40 characters; the
  full names as a key where the labels had to be numbered, else None)."""
  names = [str(r.get("name") or "") for r in rows]
  labels = [name_label(r) for r in rows]
  if len(set(labels)) < len(set(names)):
    labels = names
  short, numbered = unique_short(labels, LABEL_CHARS * lines - 4 * (lines - 1))
  return [wrap(x) for x in short], (names if numbered else None)
