"""Report pipeline agent status to the service from outside it (docs/agents.md).

Over HTTP with an API key or a bearer token (``POST /api/sessions/{id}/events``), or
straight into the deployment's Redis through the hub's own publish script
(docs/redis-layout.md). Both retry while the service or its store is briefly away.

    from pipeline_agent import report
    report("render-1", "renderer", "running", 0.5, "Frame 120/240",
           url="http://127.0.0.1:8000", api_key=os.environ["PIPELINE_API_KEY"])

This package never imports FastAPI or the service's app; the Redis mode imports the
hub's Redis adapter (and redis-py) only when it is chosen.
"""

from pipeline_agent.http_reporter import HttpReporter, report
from pipeline_agent.reporter import Reporter, ReportError, Status
from pipeline_agent.retry import RetryPolicy

__all__ = ["HttpReporter", "ReportError", "Reporter", "RetryPolicy", "Status", "report"]
