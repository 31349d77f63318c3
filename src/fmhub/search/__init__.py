"""Search: find repos by id, task, tags, library, license, dataset and report-card metric.

The store calls this domain's write hook on every write, so each repo's document (its card's metadata and
tags at the default branch's head, and its report cards' headline metrics) changes in the same transaction
as the repo; :func:`fmhub.indexing.reindex` rebuilds the index of an existing store. Queries follow the
Hugging Face Hub's list conventions (``search``, ``author``, ``filter``, ``sort``), plus metric filters.

Example:
    >>> from fmhub.search import Search, SearchQuery, MetricFilter
    >>> found = Search(store.db).query(SearchQuery(filters=["text-classification"],
    ...                                            metrics=[MetricFilter.parse("accuracy>=0.95", "acme/news:test")]))
    >>> [hit.repo_id for hit in found.hits]
"""

from fmhub.search._index import Document, MetricRow, SearchHook, document_for, report_metrics, write_documents
from fmhub.search._query import SORTS, MetricFilter, Search, SearchHit, SearchQuery, SearchResult, lower_is_better
from fmhub.store.hooks import register_write_hook

__all__ = ["Search", "SearchQuery", "SearchResult", "SearchHit", "MetricFilter", "SORTS", "lower_is_better",
           "SearchHook", "Document", "MetricRow", "document_for", "report_metrics", "write_documents"]

# Registering is what keeps the index current (the store imports this package with its table module).
register_write_hook(SearchHook())
