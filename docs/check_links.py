"""Check every local link of the built site: each ``href``/``src`` to a file (and its ``#anchor``).

Usage: python docs/check_links.py docs/_build/html. Exits 1, listing the broken links, if a link
points to a file that was not built or to an anchor that its page does not define. External
links (http, https, mailto, ...) are not followed: the build and this check stay offline.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if value and ((name == "href" and tag in ("a", "link")) or
                          (name == "src" and tag in ("img", "script", "iframe", "source"))):
                self.links.append(value)


def _parse(path, cache):
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(root):
    """The broken local links under ``root`` as (page, link, reason) triples."""
    root = Path(root).resolve()
    cache, broken = {}, []
    pages = sorted(root.rglob("*.html"))
    for page in pages:
        for link in _parse(page, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue  # external (or file://, e.g. a local MathJax): not this site's
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page.relative_to(root), link, "no such file"))
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target, cache).ids:
                    broken.append((page.relative_to(root), link, "no such anchor"))
    return pages, broken


def main(argv):
    root = argv[1] if len(argv) > 1 else "docs/_build/html"
    pages, broken = broken_links(root)
    if not pages:
        print(f"check_links: no HTML pages under {root}")
        return 1
    for page, link, reason in broken:
        print(f"{page}: {link}: {reason}")
    print(f"check_links: {len(pages)} pages, {len(broken)} broken local links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
