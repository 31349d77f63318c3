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
from urllib.parse import quote, urljoin, urlsplit

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


def _attribute_filter(base: str):
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "code" and attribute == "class":
            return value if value.startswith("language-") and value[9:].replace("-", "").isalnum() else None
        if tag == "img" and attribute == "src":
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith("/"):
                return None  # remote or absolute: not loaded (the alt text stays)
            return urljoin(base, quote(value, safe="/%#?=&"))
        return value
    return keep


def render_markdown(text: str, *, base: str, cache_key: str | None = None) -> str:
    """Sanitized HTML of ``text`` (markdown with optional HTML); relative images resolve under ``base``.

    Args:
        base: URL folder relative image paths resolve against (the repo's ``resolve/<rev>/``).
        cache_key: an id of the text (a blob sha256): the same text and base render once.
    """
    key = (cache_key, base) if cache_key else None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    html = _MD.render(text)
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                      link_rel="noopener noreferrer nofollow", strip_comments=True,
                      attribute_filter=_attribute_filter(base))
    if key is not None:
        _CACHE[key] = clean
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return clean
