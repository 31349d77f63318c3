"""What fmhub's two HTTP servers share: the hub server (``fmhub server``) and the inference server
(``fmhub serve``) answer errors the same way, limit request bodies the same way, and serve their ``/docs``
page from installed files (no CDN).
"""

from fmhub.http._docs import ASSETS, serve_docs
from fmhub.http._errors import HUB_ERRORS, document_errors, error_response, header_safe, install_error_handlers
from fmhub.http._limits import MAX_JSON_BYTES, BodyLimitMiddleware

__all__ = ["ASSETS", "serve_docs", "HUB_ERRORS", "document_errors", "error_response", "header_safe", "install_error_handlers", "BodyLimitMiddleware",
           "MAX_JSON_BYTES"]
