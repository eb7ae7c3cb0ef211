"""The documentation: links and their anchors resolve, shown commands run,
the README stays a front page, the docs stay within their length, and every
docs table sits next to the command that made it, with at most one commit
hash (its "measured on" line)."""

import functools
import glob
import os
import re
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.md"
DOC_PAGES = sorted(os.path.relpath(path, REPO)
                   for path in glob.glob(os.path.join(REPO, "docs", "*.md")))
PAGES = [README] + DOC_PAGES
# Pages whose tables are not measurements (docs/architecture.md: the layers).
TABLES_WITHOUT_COMMAND = ("docs/architecture.md",)
MAX_README_LINES = 200
# docs/*.md together, and any one page.
MAX_DOCS_LINES = 1300
MAX_PAGE_LINES = 400
# Tables (and lines shown near them) must name their command this close.
COMMAND_DISTANCE = 15

# [text](target) and ![alt](target), an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# `python -m experiments.X ...` or `python3 -m experiments.X ...`: the
# arguments run to the end of the code span or line.
COMMAND = re.compile(r"\bpython3? -m experiments\.(\w+)([^`\n]*)")
FLAG = re.compile(r"(?<![\w-])--([A-Za-z][\w]*)")
# A commit hash: 7-40 hex digits with at least one digit and one letter a-f
# (so neither a word such as "defaced" nor a plain number such as 2520200).
COMMIT = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


def read(page):
  with open(os.path.join(REPO, page), encoding="utf-8") as f:
    return f.read()


def join_continuations(text):
  """Shell line continuations (a trailing backslash) joined into one line."""
  return re.sub(r"\\\n\s*", " ", text)


def commands(page):
  """(binary, [flag names]) of every experiments command shown on `page`;
  a trailing `# comment` in a code block is not part of the command."""
  found = []
  for match in COMMAND.finditer(join_continuations(read(page))):
    arguments = re.split(r"\s#", match.group(2))[0]
    found.append((match.group(1), FLAG.findall(arguments)))
  return found


def external(target):
  """http(s), mailto, ...: not a file of this repository."""
  return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target))


def links(page):
  """Relative link and image targets on `page` (anchors stripped)."""
  targets = []
  for target in LINK.findall(read(page)):
    if external(target) or target.startswith("#"):
      continue  # an anchor on this page: see anchored_links
    targets.append(target.split("#", 1)[0])
  return targets


def anchored_links(page):
  """(page the anchor is on, anchor) of every link on `page` with an
  #anchor into a markdown page: `#x` on `page` itself, `f.md#x` on f.md."""
  found = []
  for target in LINK.findall(read(page)):
    if external(target) or "#" not in target:
      continue
    path, anchor = target.split("#", 1)
    if not path:
      found.append((page, anchor))
    elif path.endswith(".md"):
      found.append((os.path.normpath(
          os.path.join(os.path.dirname(page), path)), anchor))
  return found


def slug(heading):
  """GitHub's anchor of a heading: markup dropped, lowercase, punctuation
  removed (letters, digits, '_', '-' and spaces stay), spaces to '-'."""
  text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url)
  text = re.sub(r"<[^>]+>", "", text).strip().lower()
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page):
  """The anchors of `page`'s headings (not in fenced code); a repeated
  heading gets GitHub's -1, -2, ... suffixes."""
  seen = {}
  in_fence = False
  for line in read(page).splitlines():
    if line.lstrip().startswith("```"):
      in_fence = not in_fence
      continue
    heading = re.match(r"^#{1,6}\s+(.*?)(\s+#+)?\s*$", line)
    if heading and not in_fence:
      base = slug(heading.group(1))
      count = seen.get(base, 0)
      seen[base] = count + 1
      yield base if count == 0 else f"{base}-{count}"


@functools.lru_cache(maxsize=None)
def helpfull(binary):
  """The --helpfull text of experiments/<binary>.py (absl exits 1 after it)."""
  env = dict(os.environ, ECHO_JAX_HOST_DEVICES="1", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  result = subprocess.run(
      [sys.executable, "-m", f"experiments.{binary}", "--helpfull"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
      check=False)
  return result.stdout + result.stderr


def accepts(help_text, flag):
  """Whether --helpfull lists `flag` (`--noX` is the boolean `--[no]X`)."""
  def listed(name):
    # A flag's own help entry: "  --name: ..." or "  --[no]name: ...".
    return re.search(rf"^\s+--(\[no\])?{re.escape(name)}:", help_text,
                     re.MULTILINE)

  if listed(flag):
    return True
  return flag.startswith("no") and bool(re.search(
      rf"^\s+--\[no\]{re.escape(flag[2:])}:", help_text, re.MULTILINE))


def tables(lines):
  """(first, last) line index of every markdown table in `lines`."""
  spans = []
  for i, line in enumerate(lines):
    if not line.startswith("|"):
      continue
    if i > 0 and lines[i - 1].startswith("|"):
      spans[-1] = (spans[-1][0], i)
    else:
      spans.append((i, i))
  return spans


def all_commands():
  by_binary = {}
  for page in PAGES:
    for binary, flags in commands(page):
      by_binary.setdefault(binary, []).append((page, flags))
  return sorted(by_binary.items())


class LinksTest(parameterized.TestCase):

  @parameterized.parameters(*PAGES)
  def test_relative_links_and_images_resolve(self, page):
    base = os.path.dirname(os.path.join(REPO, page))
    missing = [target for target in links(page)
               if target and not os.path.exists(os.path.join(base, target))]
    self.assertEmpty(missing, f"{page} links to missing files")

  @parameterized.parameters(*PAGES)
  def test_anchors_name_a_heading_of_their_page(self, page):
    broken = [f"{target}#{anchor}" for target, anchor in anchored_links(page)
              if not os.path.isfile(os.path.join(REPO, target))
              or anchor not in set(anchors(target))]
    self.assertEmpty(broken, f"{page} links to anchors no heading has")

  def test_slug_follows_github(self):
    self.assertEqual(slug("Many models on one GPU (H200)"),
                     "many-models-on-one-gpu-h200")
    self.assertEqual(
        slug("The cost model: how far from this machine's limit"),
        "the-cost-model-how-far-from-this-machines-limit")
    self.assertEqual(slug("ignore_state"), "ignore_state")
    self.assertEqual(slug("Start-up: the `reproduce` run"),
                     "start-up-the-reproduce-run")


class CommandsTest(parameterized.TestCase):

  def test_pages_show_commands(self):
    self.assertNotEmpty(commands(README))
    self.assertNotEmpty(all_commands())

  @parameterized.named_parameters(
      (binary, binary, uses) for binary, uses in all_commands())
  def test_binary_exists_and_accepts_flags(self, binary, uses):
    pages = sorted({page for page, _ in uses})
    self.assertTrue(
        os.path.isfile(os.path.join(REPO, "experiments", f"{binary}.py")),
        f"experiments/{binary}.py, shown in {pages}, does not exist")
    help_text = helpfull(binary)
    self.assertIn("--workdir", help_text,
                  f"no --helpfull from experiments.{binary}:\n{help_text}")
    unknown = sorted({(page, f"--{flag}") for page, flags in uses
                      for flag in flags if not accepts(help_text, flag)})
    self.assertEmpty(unknown, f"flags experiments.{binary} does not accept")


class ReadmeTest(absltest.TestCase):

  def test_front_page_length(self):
    lines = read(README).splitlines()
    self.assertLessEqual(len(lines), MAX_README_LINES)

  def test_keeps_the_ci_commands(self):
    text = read(README)
    for command in ("python3 -m pip install -r requirements.txt",
                    "python3 -m experiments.reproduce",
                    "python3 -m pytest -n 2 -q"):
      self.assertIn(command, text)
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
      self.assertIn("python3 -m pytest -n 2 -q", f.read())


class TablesTest(parameterized.TestCase):

  @parameterized.parameters(
      *[page for page in DOC_PAGES if page not in TABLES_WITHOUT_COMMAND])
  def test_every_table_names_its_command(self, page):
    lines = read(page).splitlines()
    near_command = lambda ls: any(COMMAND.search(line) for line in ls)
    orphans = []
    for first, last in tables(lines):
      before = lines[max(0, first - COMMAND_DISTANCE):first]
      after = lines[last + 1:last + 1 + COMMAND_DISTANCE]
      if not (near_command(before) or near_command(after)):
        orphans.append(f"line {first + 1}: {lines[first]}")
    self.assertEmpty(orphans, f"{page}: tables without their command")

  @parameterized.parameters(*PAGES)
  def test_commit_hashes_only_in_measured_on_lines(self, page):
    stray = [(n, line) for n, line in enumerate(read(page).splitlines(), 1)
             if COMMIT.search(line) and "measured on" not in line]
    self.assertEmpty(stray, f"{page}: commit hashes outside 'measured on' "
                     "lines")

  @parameterized.parameters(*PAGES)
  def test_at_most_one_commit_hash_per_table(self, page):
    # A table's lines: its rows and the text since the previous table or
    # heading, where its command and "measured on" line stand.
    lines = read(page).splitlines()
    crowded = []
    start = 0
    for first, last in tables(lines):
      for i in range(first - 1, start - 1, -1):
        if lines[i].startswith("#"):
          start = i
          break
      hashes = sum(len(COMMIT.findall(line)) for line in lines[start:last + 1])
      if hashes > 1:
        crowded.append(f"line {first + 1}: {hashes} commit hashes")
      start = last + 1
    self.assertEmpty(crowded, f"{page}: tables with more than one commit "
                     "hash (one 'measured on' line per table)")

  def test_docs_length(self):
    lengths = {page: len(read(page).splitlines()) for page in DOC_PAGES}
    self.assertLessEqual(sum(lengths.values()), MAX_DOCS_LINES, lengths)
    self.assertEmpty({page: n for page, n in lengths.items()
                      if n > MAX_PAGE_LINES}, "docs pages over the limit")

  def test_docs_pages_exist(self):
    for page in ("tutorial", "extensions", "map", "performance",
                 "reproducibility", "architecture"):
      self.assertIn(f"docs/{page}.md", DOC_PAGES)


if __name__ == "__main__":
  absltest.main()
