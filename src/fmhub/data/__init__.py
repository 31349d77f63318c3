"""The data stage: import sources into versioned dataset repos (Parquet shards + card + quality report).

Example:
    >>> from fmhub.data import load
    >>> dataset = load("acme/reviews")            # a DatasetDict of the default branch's commit
"""

from fmhub.data._load import load

__all__ = ["load"]
