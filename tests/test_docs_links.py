"""Every Markdown link of the repository points inside it, at a file that exists: a clone stands on its own."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_files():
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split()]


def test_it_finds_the_documents():
    assert ROOT / "README.md" in markdown_files() and ROOT / "docs" / "spec" / "domain.md" in markdown_files()


def test_it_has_no_link_leaving_the_repository_or_going_nowhere():
    bad = []
    for doc in markdown_files():
        text = doc.read_text()
        if "../shared" in text:
            bad.append(f"{doc.relative_to(ROOT)}: mentions ../shared")
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # http(s), mailto, or an anchor in the same page
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target}")
    assert bad == []
