"""The exported API is a promise: changing it must be a deliberate edit of this test."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "fmhub": ["__version__", "FmhubError", "Hub", "LoadedModel", "Store", "load", "open_store"],
    "fmhub.formats": ["ModelFormat", "LoadedModel", "register", "get", "names", "load", "load_folder",
                      "card_metadata", "variant_of", "format_of", "require_trainable", "require_safetensors",
                      "DEFAULT"],
    "fmhub.tasks": ["Task", "Metric", "Scored", "Endpoint", "Forward", "OnRows", "Item", "ServingContext",
                    "TokenizedSplit", "batch_order", "pad_rows", "IGNORE", "PERTURBATIONS", "register", "get", "names",
                    "all_tasks", "for_model", "endpoints", "LOWER_IS_BETTER", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS",
                    "ImageTooLargeError", "inspect_image", "dhash", "decode_base64"],
    "fmhub.explain": ["Explainer", "Prepared", "Explanation", "Completeness", "MethodUnavailableError", "METHODS",
                      "DEFAULT_STEPS", "MAX_STEPS", "TOLERANCE", "MAX_POSITIONS", "BINS", "ExplainArgs", "explain",
                      "label_id", "max_length_of", "default_method", "require", "probabilities", "faithfulness",
                      "spearman", "register", "get", "names", "for_task", "ExplainOptions", "SectionArgs",
                      "explanations_section", "explained_rows", "KEEPS_REASONS", "SECTION_ROWS", "SECTION_STEPS",
                      "SECTION_MAX_STEPS", "dataset_rows", "colour", "overlay_png", "scale_of",
                      "to_html"],
    "fmhub.refs": ["split_ref"],
    "fmhub.optimize": ["export_onnx", "quantize", "prune", "distill", "VariantOutcome"],
    "fmhub.evaluate": ["EvalConfig", "EvalOutcome", "evaluate", "parent_comparison", "stored_report", "Evaluations",
                       "EvaluationInfo", "flat_metrics", "SCHEMA_ID", "SECTIONS", "LOWER_IS_BETTER",
                       "report_folder", "schema"],
    "fmhub.client": ["Hub", "LocalHub", "RemoteHub", "hub", "RepoInfo", "UploadFile", "CommitOperation",
                     "UNKNOWN_TIME", "default_author", "PullRequestDetails", "is_pull_request_ref"],
    "fmhub.store": [
        "open_store", "Store", "Database", "metadata", "complete_metadata", "SCHEMA_HEAD", "BlobStore", "BlobInfo", "open_blob_store", "Repo", "AuditEvent", "Commit",
        "TreeEntry",
        "Ref", "RepoRefs", "AddFile", "DeleteFile", "DeleteFolder", "CopyFile", "Operation", "DEFAULT_BRANCH",
        "REPO_TYPES", "validate_path", "validate_repo_id", "validate_ref_name", "validate_repo_type",
    ],
    "fmhub.store.maintenance": ["Problem", "FsckReport", "GcReport", "fsck", "gc", "DEFAULT_GC_GRACE_SECONDS"],
    "fmhub.store.transfer": ["PlannedFile", "plan_upload", "upload", "download_snapshot", "download_files",
                             "FileFetcher", "select_files", "snapshot_folder"],
    "fmhub.serve": ["ServeConfig", "ServedModel", "BACKENDS", "serve", "app_for", "prepare"],
    "fmhub.cli": ["app", "main"],
    "fmhub.server": ["create_app", "HubConfig"],
    "fmhub.server.web": ["install"],
    "fmhub.http": ["ASSETS", "serve_docs", "HUB_ERRORS", "document_errors", "error_response", "header_safe",
                   "install_error_handlers", "BodyLimitMiddleware", "MAX_JSON_BYTES"],
    "fmhub.data": ["load"],
    "fmhub.accounts": ["Accounts", "Account", "Member", "TokenInfo", "Principal", "ORG_ROLES", "TOKEN_ROLES",
                       "TOKEN_PREFIX", "RESERVED_NAMES", "validate_account_name"],
    "fmhub.runs": ["Runs", "RunInfo", "MetricPoint", "StepMetrics", "MetricsBuffer", "PipelineStepRecord",
                   "PipelineSteps", "check_step_key", "Environment", "environment", "TensorBoardWriter", "RUN_STATUSES",
                   "FINAL_STATUSES", "RUN_ID_PREFIX", "MlflowExporter"],
    "fmhub.evaluations": ["Evaluations", "EvaluationInfo", "flat_metrics", "stored_report", "check_report_path",
                          "same_weights", "MetricChange", "metric_changes"],
}


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_exported_api_is_locked(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(EXPORTS[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which does not exist"


def test_every_error_has_an_http_status() -> None:
    import fmhub.errors as errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.FmhubError) and obj is not errors.FmhubError:
            error = obj.__new__(obj)  # the status depends on the class only
            assert 400 <= errors.http_status(error) < 600, name
