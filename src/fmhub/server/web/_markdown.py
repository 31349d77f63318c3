"""Cards and markdown files to safe HTML: markdown-it-py renders, nh3 (Ammonia) sanitizes with an allowlist.

Cards are user content: raw HTML in them is allowed through the parser and then cut down to a small
allowlist of tags and attributes (no ``script``, ``style``, ``svg``, ``iframe``, no event handler, no
``style`` attribute), links only to http(s), mailto or relative URLs (``javascript:`` is dropped) with
``rel="noopener noreferrer nofollow"``. Images load only from the hub: a relative ``src`` is resolved
to the repo's file at the shown revision, any other image becomes a plain link (an air-gapped browser
would fail to fetch it, and a remote image would tell a third party who reads the card).
"""

from __future__ import annotations

from collections import OrderedDict
import posixpath
from urllib.parse import quote, unquote, urlsplit

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_markdown"]

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}, "td": {"align"}, "th": {"align"},
    "ol": {"start"}, "code": {"class"}, "details": {"open"},
}
_SCHEMES = {"http", "https", "mailto"}
_CACHE: OrderedDict[tuple[str, str], str] = OrderedDict()
_CACHE_SIZE = 512


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_MD = _parser()


def _attribute_filter(base: str, folder: str, files: frozenset[str] | None):
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "code" and attribute == "class":
            return value if value.startswith("language-") and value[9:].replace("-", "").isalnum() else None
        if tag == "img" and attribute == "src":
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith("/"):
                return None  # remote or absolute: not loaded (the alt text stays)
            path = posixpath.normpath(posixpath.join(folder, unquote(parts.path)))
            if path.startswith("../") or (files is not None and path not in files):
                return None  # not a file of this revision: no request for it
            return base + quote(path)
        return value
    return keep


def render_markdown(text: str, *, base: str, cache_key: str | None = None, folder: str = "",
                    files: frozenset[str] | None = None) -> str:
    """Sanitized HTML of ``text`` (markdown with optional HTML); relative images resolve under ``base``.

    Args:
        base: the repo's ``resolve/<commit>/`` URL; an image's repo path is appended to it.
        folder: the repo folder of the markdown file (relative image paths start there).
        files: the revision's file paths: an image that is none of them is dropped, not requested.
        cache_key: an id of the text (a blob sha256): the same text, base and folder render once.
    """
    key = (cache_key, base + "\0" + folder) if cache_key else None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    html = _MD.render(text)
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                      link_rel="noopener noreferrer nofollow", strip_comments=True,
                      attribute_filter=_attribute_filter(base, folder, files))
    if key is not None:
        _CACHE[key] = clean
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return clean
