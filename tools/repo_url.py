"""The course's GitHub URL, stated once in pyproject.toml and copied where it must be literal:
the Colab badges, the setup cells' `pip install ... @ git+URL` (run before `utils` exists) and
the README. `--check` lists the copies that disagree; `--set URL` (`make repo-url URL=...`)
rewrites every copy, for a fork.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = r"[A-Za-z0-9_.-]+"  # what GitHub allows in an owner's or a repository's name
GITHUB = re.compile(rf"https://github\.com/{NAME}/{NAME}")
# Each place a copy of the URL lives, as a pattern whose group 1 is "https://github.com/o/n"
# (or "o/n" in a badge).
COPIES = [
    re.compile(rf'^Repository = "(https://github\.com/{NAME}/{NAME})"$', re.M),  # pyproject
    re.compile(rf"colab\.research\.google\.com/github/({NAME}/{NAME})/blob/"),  # the badges
    re.compile(rf"dl-course-utils @ git\+(https://github\.com/{NAME}/{NAME}?)(?:\.git)?"
               r"(?![A-Za-z0-9_.-])"),  # the setup cells
]


def course_files(root: Path = ROOT) -> list[Path]:
    return [root / "pyproject.toml", root / "README.md",
            *sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def copies(root: Path = ROOT) -> list[tuple[Path, str]]:
    """Every copy of the course's URL: (file, URL), in file order."""
    found = []
    for path in course_files(root):
        text = path.read_text()
        for pattern in COPIES:
            for match in pattern.finditer(text):
                url = match.group(1)
                found.append((path, url if url.startswith("https://") else
                              f"https://github.com/{url}"))
    return found


def canonical(root: Path = ROOT) -> str:
    return COPIES[0].search((root / "pyproject.toml").read_text()).group(1)


def disagreeing(root: Path = ROOT) -> list[tuple[Path, str]]:
    url = canonical(root)
    return [(path, found) for path, found in copies(root) if found != url]


def set_url(url: str, root: Path = ROOT) -> int:
    """Rewrite every copy to `url`; return the number of files changed."""
    if not GITHUB.fullmatch(url):
        raise SystemExit(f"expected a GitHub repository URL like https://github.com/owner/name "
                         f"(Colab opens notebooks from GitHub), got {url!r}")
    old_urls = {found for _, found in copies(root)}
    changed = 0
    for path in course_files(root):
        text = new = path.read_text()
        for old in old_urls:
            new = new.replace(old, url).replace(
                f"colab.research.google.com/github/{old.removeprefix('https://github.com/')}/",
                f"colab.research.google.com/github/{url.removeprefix('https://github.com/')}/")
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", action="store_true", help="list copies that disagree")
    group.add_argument("--set", metavar="URL", help="rewrite every copy to URL")
    args = parser.parse_args(argv)
    if args.set:
        print(f"repo-url: {set_url(args.set)} file(s) now point to {args.set}")
    wrong = disagreeing()
    for path, found in wrong:
        print(f"repo-url: {path.relative_to(ROOT)} has {found}, pyproject.toml says "
              f"{canonical()}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
