"""The data stage: import sources into versioned dataset repos (Parquet shards + card + quality report).

In progress: readers (`_sources`), PII redaction (`_pii`) and the quality report (`_quality`) land first;
`fmhub data import` and `fmhub.data.load` build on them.
"""
