"""The hub's web UI: server-rendered pages over the same store, accounts and access rules as the API.

Pages (Hugging Face URL shapes where the Hub has them, fmhub's own under ``/-/``):

- ``/``, ``/models``, ``/datasets``: search, sort (updated, name, a report-card metric), leaderboards;
- ``/{ns}/{name}`` and ``/datasets/{ns}/{name}``: the card and its metadata, lineage and "use this";
  ``/tree/{rev}/{path}``, ``/blob/{rev}/{path}``, ``/commits/{rev}``, ``/commit/{sha}``,
  ``/compare/{a}...{b}``, ``/refs``;
- ``/{ns}/{name}/eval/{rev}/{dataset}/{split}``: a report card with charts and the error browser;
- ``/{ns}/{name}/lineage/{rev}`` (and for datasets): the lineage graph and what was built from the version;
  ``/-/compare/reports``: cards side by side; ``/datasets/{ns}/{name}/viewer/default/{split}``: rows;
- ``/-/runs``, ``/-/runs/{id}``, ``/-/runs/compare``: training runs, curves, config diffs;
- ``/login``, ``/logout``, ``/settings/tokens``, ``/settings/organizations[/{org}]``, ``/settings/audit``;
- ``/{account}``: a user's or organization's repos.

Scripts, styles and plotly.js are served from ``/static`` (air-gapped sites need no CDN).
"""

from fmhub.server.web._install import install

__all__ = ["install"]
