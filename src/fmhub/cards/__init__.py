"""Repo cards: the ``README.md`` of a repository, YAML metadata on top, markdown below.

Same format and splitting rules as the Hugging Face Hub and ``huggingface_hub.RepoCard``, hardened
for a server that parses cards anyone can upload (size, alias-expansion and nesting limits), with
metadata that is always JSON-ready.

Example:
    >>> from fmhub.cards import parse_card, validate_metadata, card_tags, render_card
    >>> card = parse_card("---\\nlicense: mit\\ndatasets: [ag_news]\\n---\\n# Tiny BERT\\n")
    >>> validate_metadata(card.metadata, "model").ok
    True
    >>> card_tags(card.metadata, "model")
    ['license:mit', 'dataset:ag_news']
    >>> render_card(card.metadata, card.body) == "---\\nlicense: mit\\ndatasets:\\n- ag_news\\n---\\n# Tiny BERT\\n"
    True
"""

from __future__ import annotations

from fmhub.cards._metadata import (
    KNOWN_LICENSES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_NODES,
    Card,
    ValidationResult,
    card_tags,
    parse_card,
    render_card,
    validate_metadata,
)

__all__ = [
    "fmhub_section",
    "Card",
    "ValidationResult",
    "parse_card",
    "validate_metadata",
    "card_tags",
    "render_card",
    "KNOWN_LICENSES",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_NODES",
    "MAX_METADATA_DEPTH",
]


def fmhub_section(metadata: dict, name: str) -> dict:
    """``metadata["fmhub"][name]`` of a card's YAML when it is a mapping, else ``{}`` (e.g. ``"lineage"``)."""
    fmhub = metadata.get("fmhub")
    section = fmhub.get(name) if isinstance(fmhub, dict) else None
    return section if isinstance(section, dict) else {}
